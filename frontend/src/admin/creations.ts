// The creations view: counts by state, a paginated table filtered by state, and a creation's
// detail (state timeline, byte progress, failure reason, cleanup) with its manifest.
import { type AdminClient, type CreationListing } from '../client/admin';
import { stateName } from '../client/creation';
import { describeFactoryError, describeState, formatBytes, formatCycles } from '../client/errors';
import { formatAge } from '../client/progress';
import type { CreationRecord, CreationStateName, CreationSummary } from '../client/types';
import { $, confirmAction, el, figure, formatTimeNs, say, shortId } from './dom';
import { showManifest } from './manifest';

interface ListState {
  /** Cursors of the pages shown so far (`null` for the first). */
  cursors: (bigint | null)[];
  current: CreationListing | null;
  selected: bigint | null;
  /** Failure reasons read so far, by migration id (the list has summaries only). */
  reasons: Map<bigint, string>;
}

const list: ListState = { cursors: [null], current: null, selected: null, reasons: new Map() };

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

function filterState(): CreationStateName | null {
  const v = $<HTMLSelectElement>('filter-state').value;
  return v ? (v as CreationStateName) : null;
}

function filterPrincipal(): string | null {
  return $<HTMLInputElement>('filter-principal').value.trim() || null;
}

function pageSize(): number {
  return Number($<HTMLSelectElement>('page-size').value);
}

async function renderCounts(admin: AdminClient): Promise<void> {
  const c = await admin.counts();
  const item = (label: string, n: bigint, key: string) => el('li', { 'data-count': key, 'data-value': n.toString() }, `${label}: ${n}`);
  $('counts').replaceChildren(
    item('Queued', c.queued, 'NotStarted'),
    item('In progress', c.inProgress, 'active'),
    ...c.activeByState.map((a) => item(`  ${a.state}`, a.count, a.state)),
    item('Completed', c.succeeded, 'Completed'),
    item('Failed attempts', c.failedAttempts, 'Failed'),
    item('Attempts in total', c.attempted, 'attempted'),
    el('li', {}, `Cycles the reserve paid, net: ${formatCycles(c.totalCyclesConsumed)}`),
  );
}

function row(s: CreationSummary, onOpen: (id: bigint) => void): HTMLTableRowElement {
  const state = stateName(s.state);
  const failedIn = s.failed_in[0] ? stateName(s.failed_in[0]) : null;
  const canister = s.canister_id[0]?.toText() ?? '—';
  const reason = list.reasons.get(s.migration_id) ?? (state === 'Failed' ? `failed while ${describeState(failedIn ?? 'Failed')}` : '');
  const td = (label: string, text: string, attrs: Record<string, string | undefined> = {}) =>
    el('td', { 'data-label': label, ...attrs }, text);
  const tr = el(
    'tr',
    { 'data-migration-id': s.migration_id.toString(), 'data-state': state, tabindex: '0' },
    td('#', s.migration_id.toString()),
    td('State', state, { 'data-state': state }),
    td('Owner', shortId(s.owner.toText()), { title: s.owner.toText() }),
    td('Canister', shortId(canister), { title: canister }),
    td('Attempts', String(s.attempts)),
    td('Cycles', formatCycles(s.cycles_consumed)),
    td('Age', formatAge(s.created_at, nowNs())),
    td('Failure', reason, { class: 'reason' }),
  );
  if (list.selected === s.migration_id) tr.setAttribute('aria-selected', 'true');
  tr.onclick = () => onOpen(s.migration_id);
  tr.onkeydown = (ev) => {
    if (ev.key === 'Enter') onOpen(s.migration_id);
  };
  return tr;
}

export async function loadCreations(admin: AdminClient, opts: { reset?: boolean } = {}): Promise<void> {
  if (opts.reset) list.cursors = [null];
  const after = list.cursors[list.cursors.length - 1] ?? null;
  const [listing] = await Promise.all([
    admin.listCreations({ startAfter: after, limit: pageSize(), state: filterState(), principal: filterPrincipal() }),
    renderCounts(admin),
  ]);
  list.current = listing;
  // The failure reasons of the failed rows shown (one record each, at most a page of them).
  await Promise.all(
    listing.items
      .filter((s) => stateName(s.state) === 'Failed' && !list.reasons.has(s.migration_id))
      .map(async (s) => {
        const { record } = await admin.creation(s.migration_id);
        const e = record.error[0];
        if (e) list.reasons.set(s.migration_id, describeFactoryError(e));
      }),
  );
  const open = (id: bigint) => void openCreation(admin, id);
  const tbody = $('creations').querySelector('tbody') as HTMLTableSectionElement;
  tbody.replaceChildren(...listing.items.map((s) => row(s, open)));
  const filter = [filterState(), filterPrincipal() && `matching “${filterPrincipal()}”`].filter(Boolean).join(', ');
  $('creations-status').textContent = listing.items.length
    ? `Page ${list.cursors.length}: ${listing.items.length} creation${listing.items.length === 1 ? '' : 's'}${
        filter ? ` (${filter}; ${listing.scanned} looked at)` : ''
      }.`
    : filter
      ? `No creation here (${filter}; ${listing.scanned} looked at).`
      : 'No creation yet.';
  $<HTMLButtonElement>('next-page').disabled = listing.next === null;
  $<HTMLButtonElement>('first-page').disabled = list.cursors.length === 1;
}

/**
 * A creation's cycles, itemised: the quote (what each `create_canister` carried), the funding
 * deposited after install, the top-ups sponsored, and what the reserve paid in the end, net of
 * what cleanups sent back (`cycles_consumed`).
 */
function cyclesFigures(record: CreationRecord): HTMLElement[] {
  const quote = record.quote[0];
  const funding = record.funding[0];
  return [
    figure('Quote', quote ? formatCycles(quote.total) : '—', { 'data-figure': 'quote' }),
    ...(funding
      ? [
          figure('Funding deposited', formatCycles(funding.deposited), { 'data-figure': 'deposited' }),
          figure('Sponsored top-ups', formatCycles(funding.sponsored), { 'data-figure': 'sponsored' }),
        ]
      : []),
    figure('Paid by the reserve, net', formatCycles(record.cycles_consumed), {
      'data-figure': 'net-cycles',
      'data-value': record.cycles_consumed.toString(),
    }),
  ];
}

export function renderDetail(record: CreationRecord): void {
  const state = stateName(record.state);
  const p = record.progress;
  $('detail-heading').textContent = `Creation ${record.migration_id}`;
  $('detail').dataset.migrationId = record.migration_id.toString();
  $('detail').dataset.state = state;
  $('detail-figures').replaceChildren(
    figure('State', state, { 'data-state': state }),
    figure('Owner', record.owner.toText()),
    figure(
      'Canister',
      record.canister_id[0]?.toText() ?? (record.cleanup[0] && 'Done' in record.cleanup[0].step ? 'deleted by the cleanup' : 'none yet'),
      { 'data-figure': 'canister' },
    ),
    figure('Attempts', String(record.attempts)),
    ...cyclesFigures(record),
    figure('Requested', formatTimeNs(record.created_at)),
    figure('Updated', formatTimeNs(record.updated_at)),
    figure('Times out at', record.deadline_at[0] !== undefined && state !== 'Failed' && state !== 'Completed' ? formatTimeNs(record.deadline_at[0]) : '—'),
    figure('Memories', `${p.memories_done} of ${p.memories_total}`),
    figure('Chunks', `${p.chunks_done} of ${p.chunks_total}`),
    ...(record.cleanup[0]
      ? [
          figure('Cleanup', `${Object.keys(record.cleanup[0].step)[0]}, ${formatCycles(record.cleanup[0].returned)} returned`, {
            'data-figure': 'cleanup',
          }),
        ]
      : []),
  );
  const total = Number(p.bytes_total);
  const done = Number(p.bytes_done);
  const bar = $<HTMLProgressElement>('detail-progress');
  bar.value = state === 'Completed' ? 1000 : total > 0 ? Math.round((done / total) * 1000) : 0;
  bar.dataset.bytesDone = p.bytes_done.toString();
  bar.dataset.bytesTotal = p.bytes_total.toString();
  $('detail-progress-text').textContent = `${formatBytes(done)} of ${formatBytes(total)} copied`;
  $('detail-timeline').replaceChildren(
    ...record.timeline.map((t) => {
      const s = stateName(t.state);
      return el('li', { 'data-state': s }, `${s}: ${describeState(s)} — ${formatTimeNs(t.at)}`);
    }),
  );
  const err = record.error[0];
  const errorBox = $('detail-error');
  errorBox.hidden = !(state === 'Failed' && err);
  errorBox.textContent = err ? describeFactoryError(err) : '';
  errorBox.dataset.kind = err ? Object.keys(err)[0] : '';
  // Any creation but a completed one can be cleaned up (a running one is failed first).
  const cleanedUp = record.cleanup[0] !== undefined && 'Done' in record.cleanup[0].step;
  $('cleanup').hidden = state === 'Completed' || cleanedUp;
}

/** While the creation shown is under way, its detail is read again every few seconds. */
let refresh: ReturnType<typeof setTimeout> | null = null;
const REFRESH_MS = 2_000;

function watchDetail(admin: AdminClient, id: bigint, state: CreationStateName): void {
  if (refresh) clearTimeout(refresh);
  refresh = null;
  if (state === 'Completed' || state === 'Failed') return;
  refresh = setTimeout(() => {
    if (list.selected !== id || $('detail').hidden) return;
    admin.creation(id).then(
      async ({ record, roots }) => {
        if (list.selected !== id) return;
        renderDetail(record);
        const now = stateName(record.state);
        // A new state may bring the manifest (after Exporting) or the reported root.
        if (now !== state) await showManifest(admin, record, roots).catch(() => undefined);
        watchDetail(admin, id, now);
      },
      () => watchDetail(admin, id, state), // a failed read is tried again
    );
  }, REFRESH_MS);
}

export async function openCreation(admin: AdminClient, id: bigint): Promise<void> {
  list.selected = id;
  for (const tr of $('creations').querySelectorAll('tbody tr'))
    tr.setAttribute('aria-selected', String((tr as HTMLElement).dataset.migrationId === id.toString()));
  const { record, roots } = await admin.creation(id);
  $('detail').hidden = false;
  renderDetail(record);
  watchDetail(admin, id, stateName(record.state));
  await showManifest(admin, record, roots);
  $('detail').scrollIntoView({ block: 'start' });
}

export function wireCreations(admin: AdminClient, busy: (f: () => Promise<void>) => Promise<void>): void {
  $('filter-state').onchange = () => void busy(() => loadCreations(admin, { reset: true }));
  $('page-size').onchange = () => void busy(() => loadCreations(admin, { reset: true }));
  $('filter-principal').onchange = () => void busy(() => loadCreations(admin, { reset: true }));
  $<HTMLFormElement>('filter-form').onsubmit = (ev) => {
    ev.preventDefault();
    void busy(() => loadCreations(admin, { reset: true }));
  };
  $('first-page').onclick = () => void busy(() => loadCreations(admin, { reset: true }));
  $('next-page').onclick = () =>
    void busy(async () => {
      const next = list.current?.next;
      if (next === null || next === undefined) return;
      list.cursors.push(next);
      await loadCreations(admin);
    });
  $('cleanup').onclick = () =>
    void busy(async () => {
      const id = list.selected;
      if (id === null) return;
      const question = `Clean up creation ${id}? Its canister returns its cycles to the reserve, then it is stopped and deleted. The owner's data on the shared backend stays.`;
      if (!(await confirmAction(question, 'Clean up'))) return;
      const returned = await admin.cleanup(id);
      const { record, roots } = await admin.creation(id);
      renderDetail(record);
      await loadCreations(admin);
      // The manifest may be gone with the cleanup: the panel then says why.
      await showManifest(admin, record, roots).catch(() => undefined);
      say(`Creation ${id} was cleaned up; ${formatCycles(returned)} went back to the reserve.`);
    });
}
