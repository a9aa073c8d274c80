// A migration's manifest in the console: section counts and roots, the export root beside
// the root the personal canister reported, the pages one by one, and a download that
// `manifest show` and `manifest diff` read.
import { cursorText, manifestText, sectionsOf, type AdminClient, type Roots } from '../client/admin';
import { formatBytes } from '../client/errors';
import type { CreationRecord, ManifestPageReply, PageCursor } from '../client/types';
import { toHex } from '../client/upload';
import { $, el, figure } from './dom';

interface ManifestState {
  migrationId: bigint;
  /** Cursors of the pages seen, to go back. */
  cursors: PageCursor[];
  page: ManifestPageReply | null;
}

let current: ManifestState | null = null;

function leafLines(reply: ManifestPageReply): string[] {
  const l = reply.page.leaves;
  const start = reply.page.start;
  if ('Capsule' in l) return [`capsule “${l.Capsule.name}”, owner ${l.Capsule.owner.toText()}`];
  if ('Connections' in l)
    return l.Connections.map((c, i) => `connection ${start + BigInt(i)}: ${c.peer.toText()} (${c.relationship}, ${c.status})`);
  if ('Memories' in l)
    return l.Memories.map(
      (m) => `memory ${m.id} “${m.title}” (${m.kind}): ${m.blobs.map((b) => `${b.mime_type} ${formatBytes(b.size)}`).join(', ') || 'no file'}`,
    );
  return l.Blobs.map((b) => `blob ${toHex(b.hash)}: ${formatBytes(b.size)} in ${b.chunk_hashes.length} chunk(s)`);
}

function renderPage(): void {
  const s = current;
  if (!s?.page) return;
  const cursor = s.cursors[s.cursors.length - 1] as PageCursor;
  $('manifest-cursor').textContent = `${cursorText(cursor)} (page ${s.cursors.length})`;
  $('manifest-cursor').dataset.cursor = cursorText(cursor);
  $<HTMLButtonElement>('manifest-prev').disabled = s.cursors.length <= 1;
  $<HTMLButtonElement>('manifest-next').disabled = s.page.page.next[0] === undefined;
  $('manifest-leaves').replaceChildren(...leafLines(s.page).map((t) => el('li', {}, t)));
}

function renderRoots(roots: Roots): void {
  const verdict =
    roots.verdict === 'match'
      ? 'the personal canister reported the export root'
      : roots.verdict === 'mismatch'
        ? `the roots differ${roots.sections.length ? ` in ${roots.sections.join(', ')}` : ''}`
        : 'not reported yet';
  $('roots').replaceChildren(
    figure('Export root', roots.exportRoot ?? '—', { 'data-root': 'export' }),
    figure('Reported root', roots.reportedRoot ?? '—', { 'data-root': 'reported' }),
    figure('Verdict', verdict, {
      'data-verdict': roots.verdict,
      class: roots.verdict === 'match' ? 'root-match' : roots.verdict === 'mismatch' ? 'root-mismatch' : undefined,
    }),
  );
}

/** Shows the manifest of `record` (when it has one) with its first page. */
export async function showManifest(admin: AdminClient, record: CreationRecord, roots: Roots): Promise<void> {
  const box = $('manifest');
  if (!record.manifest[0]) {
    box.hidden = true;
    current = null;
    return;
  }
  box.hidden = false;
  renderRoots(roots);
  const first: PageCursor = { section: { Capsule: null }, index: 0n };
  try {
    const page = await admin.manifestPage(record.migration_id, first);
    current = { migrationId: record.migration_id, cursors: [first], page };
    const tbody = $('sections').querySelector('tbody') as HTMLTableSectionElement;
    tbody.replaceChildren(
      ...sectionsOf(page.header).map((s) =>
        el('tr', { 'data-section': s.name }, el('td', {}, s.name), el('td', {}, s.count.toString()), el('td', {}, el('code', {}, s.root))),
      ),
    );
    box.dataset.root = toHex(page.header.root);
    renderPage();
  } catch (e) {
    // A purged or cleaned-up creation may have no manifest left to page through.
    current = null;
    $('manifest-leaves').replaceChildren(el('li', {}, e instanceof Error ? e.message : String(e)));
    throw e;
  }
}

export function wireManifest(admin: AdminClient, busy: (f: () => Promise<void>) => Promise<void>): void {
  $('manifest-next').onclick = () =>
    void busy(async () => {
      const s = current;
      const next = s?.page?.page.next[0];
      if (!s || !next) return;
      s.page = await admin.manifestPage(s.migrationId, next);
      s.cursors.push(next);
      renderPage();
    });
  $('manifest-prev').onclick = () =>
    void busy(async () => {
      const s = current;
      if (!s || s.cursors.length <= 1) return;
      s.cursors.pop();
      s.page = await admin.manifestPage(s.migrationId, s.cursors[s.cursors.length - 1] as PageCursor);
      renderPage();
    });
  $('manifest-download').onclick = () =>
    void busy(async () => {
      const s = current;
      if (!s) return;
      const m = await admin.manifest(s.migrationId);
      const text = manifestText(m);
      const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
      const a = el('a', { href: url, download: `manifest-${s.migrationId}-${toHex(m.header.root).slice(0, 12)}.did.txt` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    });
}
