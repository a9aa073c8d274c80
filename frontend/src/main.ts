// The status page: create the capsule and memories with files (each upload with its own byte
// progress), list the memories (thumbnails for images), ask for the personal canister, watch
// the creation (timeline, byte progress, throughput and time left, kept across a reload), show
// the error with a retry button, and say which canister serves the capsule.
//
// Configuration comes from the URL:
//   (default)                         icemu transport at the page's own origin (icemu serve --static)
//   ?as=bob                           the icemu identity name to call as (default alice)
//   ?icemu=http://127.0.0.1:4943      icemu serve elsewhere (CORS), e.g. with `vite dev`
//   ?transport=ic&host=https://icp-api.io&backend=<canister id>[&local=1]   the IC agent
import {
  connect,
  describeError,
  describeState,
  formatBytes,
  addMemoryWithFile,
  listAllMemories,
  readBlob,
  toHex,
  CapsuleCallError,
  progressKey,
  uploadBlob,
  kindForMime,
  unwrapCapsule,
  type ConnectConfig,
  type Connection,
  type CreationStatus,
  type CapsuleTarget,
  type Memory,
} from './client';
import { ProgressEstimator, describeProgress, formatRate, type SampleStore } from './client/progress';
import { isImage } from './client/upload';
import { icManagement, renderAfterHandoff } from './after_handoff';

function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page element #${id} is missing`);
  return el;
}
const ui = {
  who: $('who'),
  servedBy: $('served-by'),
  servedCanister: $('served-canister'),
  capsuleSummary: $('capsule-summary'),
  capsuleForm: $('capsule-form') as HTMLFormElement,
  capsuleName: $('capsule-name') as HTMLInputElement,
  memoryForm: $('memory-form') as HTMLFormElement,
  memoryTitle: $('memory-title') as HTMLInputElement,
  memoryFile: $('memory-file') as HTMLInputElement,
  uploadStatus: $('upload-status'),
  memories: $('memories'),
  create: $('create') as HTMLButtonElement,
  state: $('state'),
  attempts: $('attempts'),
  deadline: $('deadline'),
  progress: $('progress') as HTMLProgressElement,
  progressText: $('progress-text'),
  progressRate: $('progress-rate'),
  uploads: $('uploads'),
  timeline: $('timeline'),
  error: $('error'),
  errorText: $('error-text'),
  retry: $('retry') as HTMLButtonElement,
  message: $('message'),
  afterHandoffSection: $('after-handoff-section'),
  afterHandoff: $('after-handoff'),
};

function configFromUrl(): ConnectConfig {
  const q = new URLSearchParams(location.search);
  if (q.get('transport') === 'ic') {
    const backend = q.get('backend');
    if (!backend) throw new Error('?transport=ic needs &backend=<canister id>');
    return {
      transport: 'ic',
      host: q.get('host') ?? 'https://icp-api.io',
      backendId: backend,
      fetchRootKey: q.get('local') === '1',
    };
  }
  return {
    transport: 'icemu',
    baseUrl: q.get('icemu') ?? '',
    caller: q.get('as') ?? 'alice',
    ...(q.get('backend') ? { backendId: q.get('backend') as string } : {}),
  };
}

let conn: Connection;
let busy = false;
/** The copy's estimator, for the attempt shown (its samples are kept in localStorage). */
let estimator: { key: string; est: ProgressEstimator; final?: { text: string; rate: string } } | null = null;

function storage(): SampleStore | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

/** Throughput and time left of the copy, from the byte counts seen (also before a reload). */
function renderRate(s: CreationStatus | null): void {
  const el = ui.progressRate;
  if (!s || s.state === 'NotStarted' || s.state === 'Failed' || s.progress.bytes_total === 0n) {
    if (s?.state === 'Failed' && estimator) estimator.est.clear();
    el.textContent = '';
    el.dataset.bytesPerSecond = '';
    el.dataset.secondsLeft = '';
    return;
  }
  const key = progressKey(s);
  if (estimator?.key !== key) estimator = { key, est: new ProgressEstimator({ store: storage(), key }) };
  if (s.state === 'Completed' && estimator.final) {
    // Shown again (the page renders the final status more than once): the copy's last figures.
    el.textContent = estimator.final.text;
    el.dataset.bytesPerSecond = estimator.final.rate;
    el.dataset.secondsLeft = '0';
    return;
  }
  const done = Number(s.progress.bytes_done);
  const total = Number(s.progress.bytes_total);
  const e = estimator.est.add(Date.now(), s.state === 'Completed' ? total : done, total);
  el.dataset.bytesPerSecond = e.bytesPerSecond === null ? '' : String(Math.round(e.bytesPerSecond));
  el.dataset.secondsLeft = e.secondsLeft === null ? '' : String(Math.round(e.secondsLeft));
  el.dataset.samples = String(estimator.est.count);
  el.textContent = describeProgress(s.state === 'Completed' ? total : done, total, e, (n) => formatBytes(n));
  if (s.state === 'Completed') {
    estimator.final = { text: el.textContent, rate: el.dataset.bytesPerSecond };
    estimator.est.clear(); // the stored samples are of no more use
  }
}

function say(text: string): void {
  ui.message.textContent = text;
}

function formatTime(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toLocaleTimeString();
}

function renderCreation(s: CreationStatus | null): void {
  ui.state.dataset.state = s?.state ?? '';
  ui.state.textContent = !s
    ? 'none yet'
    : s.state === 'Completed' || s.state === 'Failed'
      ? s.state
      : `${s.state}: ${describeState(s.state)}…`;
  ui.attempts.textContent = s && s.attempts > 1 ? `attempt ${s.attempts}` : '';
  const deadline = s?.deadlineAt ?? null;
  ui.deadline.dataset.deadlineAt = deadline?.toString() ?? '';
  ui.deadline.textContent = deadline !== null ? `(times out at ${formatTime(deadline)})` : '';
  const done = s?.progress.bytes_done ?? 0n;
  const total = s?.progress.bytes_total ?? 0n;
  ui.progress.value = Math.round((s?.fraction ?? 0) * 1000);
  ui.progress.dataset.bytesDone = done.toString();
  ui.progress.dataset.bytesTotal = total.toString();
  ui.progressText.textContent = s
    ? `${formatBytes(done)} of ${formatBytes(total)} copied (${done} / ${total} bytes, ${s.progress.chunks_done} / ${
        s.progress.chunks_total
      } chunks)`
    : '';
  renderRate(s);
  ui.timeline.replaceChildren(
    ...(s?.timeline ?? []).map((t) => {
      const li = document.createElement('li');
      li.dataset.state = t.state;
      li.textContent = `${t.state}: ${describeState(t.state)} — ${formatTime(t.at)}`;
      return li;
    }),
  );
  showError(s?.state === 'Failed' ? (s.error ?? 'The creation failed.') : null);
  ui.create.hidden = s !== null;
  ui.create.disabled = busy;
}

function showError(text: string | null): void {
  ui.error.hidden = text === null;
  ui.errorText.textContent = text ?? '';
  ui.retry.disabled = busy;
}

/**
 * Reads the capsule from the canister that serves it, then renders it in one go: the serving
 * canister (`#served-by`) changes together with the memory list, so a list item (and its
 * read-back button) always belongs to the canister the page says serves the capsule.
 */
async function refreshCapsule(): Promise<void> {
  const target: CapsuleTarget = await conn.client.capsuleTarget();
  const r = await target.actor.get_capsule();
  if ('Err' in r && !('CapsuleNotFound' in r.Err)) throw new CapsuleCallError(r.Err);
  const memories = 'Ok' in r ? await listAllMemories(target.actor) : [];
  ui.servedBy.dataset.servedBy = target.servedBy;
  ui.servedBy.textContent = target.servedBy === 'personal' ? 'your personal canister' : 'the shared backend';
  ui.servedCanister.textContent = target.canisterId.toText();
  if ('Err' in r) {
    ui.capsuleSummary.textContent = 'You have no capsule yet.';
    ui.capsuleForm.hidden = false;
    ui.memoryForm.hidden = true;
    ui.memories.replaceChildren();
    return;
  }
  const c = r.Ok;
  ui.capsuleForm.hidden = true;
  ui.memoryForm.hidden = false;
  ui.capsuleSummary.textContent = `“${c.name}”: ${c.memory_count} memories, ${c.blob_count} files (${formatBytes(
    c.blob_bytes,
  )}).`;
  ui.memories.replaceChildren(...memories.map((m) => memoryItem(m, target)));
}

/** Object URLs of image blobs already read, by blob id and canister: each is read once. */
const thumbnails = new Map<string, Promise<string>>();
/** The largest image read for a thumbnail. */
const THUMBNAIL_MAX_BYTES = 8 * 1024 * 1024;

function thumbnail(m: Memory, target: CapsuleTarget): HTMLElement {
  const blob = m.blobs.find((b) => isImage(b.mime_type));
  if (!blob || blob.size > BigInt(THUMBNAIL_MAX_BYTES)) {
    const none = document.createElement('span');
    none.className = 'thumb-none';
    none.textContent = blob ? 'large image' : m.blobs.length ? 'file' : 'note';
    return none;
  }
  const img = document.createElement('img');
  img.className = 'thumb';
  img.alt = m.title;
  img.width = 64;
  img.height = 64;
  img.dataset.mime = blob.mime_type;
  const key = `${target.canisterId.toText()}/${toHex(blob.hash)}`;
  let url = thumbnails.get(key);
  if (!url) {
    url = readBlob(target.actor, blob).then((bytes) =>
      URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: blob.mime_type })),
    );
    url.catch(() => thumbnails.delete(key));
    thumbnails.set(key, url);
  }
  url.then(
    (u) => {
      img.onload = () => (img.dataset.loaded = 'true');
      img.onerror = () => {
        img.dataset.loaded = 'false';
        img.alt = `${m.title} (this image cannot be shown)`;
      };
      img.src = u;
    },
    () => {
      img.dataset.loaded = 'false';
      img.alt = `${m.title} (the image could not be read)`;
    },
  );
  return img;
}

function memoryItem(m: Memory, target: CapsuleTarget): HTMLLIElement {
  const li = document.createElement('li');
  li.dataset.memoryId = m.id.toString();
  const body = document.createElement('div');
  body.className = 'memory-body';
  const title = document.createElement('strong');
  title.className = 'memory-title';
  title.textContent = m.title;
  body.append(title, ` — ${m.blobs.map((b) => `${b.mime_type}, ${formatBytes(b.size)}`).join('; ') || 'no file'} `);
  li.append(thumbnail(m, target), body);
  const blob = m.blobs[0];
  if (blob) {
    const read = document.createElement('button');
    read.type = 'button';
    read.className = 'read-memory';
    read.textContent = 'Read the file back';
    const out = document.createElement('span');
    out.className = 'digest';
    read.onclick = async () => {
      read.disabled = true;
      try {
        const bytes = await readBlob(target.actor, blob);
        const sha = toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)));
        out.dataset.sha256 = sha;
        out.dataset.bytes = bytes.length.toString();
        out.dataset.from = target.canisterId.toText();
        out.textContent = ` read ${formatBytes(bytes.length)} from ${target.canisterId.toText()}; SHA-256 ${sha}`;
      } catch (e) {
        out.textContent = ` ${describeError(e)}`;
      } finally {
        read.disabled = false;
      }
    };
    body.append(read, out);
  }
  return li;
}

/** One upload's line: the file, its own byte progress, and its rate. */
function uploadItem(name: string): { li: HTMLLIElement; update: (sent: number, total: number) => void; done: (text: string, ok: boolean) => void } {
  const li = document.createElement('li');
  li.dataset.file = name;
  li.dataset.state = 'uploading';
  const label = document.createElement('span');
  label.textContent = name;
  const text = document.createElement('span');
  text.className = 'upload-text';
  const bar = document.createElement('progress');
  bar.max = 1;
  bar.value = 0;
  li.append(label, text, bar);
  const est = new ProgressEstimator({ windowMs: 30_000 });
  return {
    li,
    update(sent, total) {
      bar.max = Math.max(1, total);
      bar.value = sent;
      li.dataset.bytesSent = String(sent);
      li.dataset.bytesTotal = String(total);
      const e = est.add(performance.now(), sent, total);
      text.textContent = `${formatBytes(sent)} of ${formatBytes(total)}${e.bytesPerSecond !== null ? ` · ${formatRate(e.bytesPerSecond)}` : ''}`;
    },
    done(t, ok) {
      li.dataset.state = ok ? 'done' : 'failed';
      text.textContent = t;
    },
  };
}

/** The canister the after-handoff panel is shown for (rendered once per canister). */
let afterHandoffFor: string | null = null;

/** Once the creation is Completed: the canister's outlook, upgrade and download (after_handoff.ts). */
async function showAfterHandoff(s: CreationStatus | null): Promise<void> {
  const id = s?.state === 'Completed' ? s.canisterId : null;
  ui.afterHandoffSection.hidden = id === null;
  if (!id || afterHandoffFor === id.toText()) return;
  afterHandoffFor = id.toText();
  ui.afterHandoff.dataset.canisterId = id.toText();
  await renderAfterHandoff(ui.afterHandoff, {
    backend: conn.backend,
    personal: conn.personal(id),
    canisterId: id,
    management: icManagement(conn.agent, id),
    purgeCheck: async () => {
      const r = await conn.backend.get_creation_status();
      return 'Ok' in r ? r.Ok.purge_check : [];
    },
  });
}

async function guarded(f: () => Promise<void>): Promise<void> {
  if (busy) return;
  busy = true;
  ui.create.disabled = true;
  ui.retry.disabled = true;
  try {
    await f();
  } catch (e) {
    say(describeError(e));
  } finally {
    busy = false;
    ui.create.disabled = false;
    ui.retry.disabled = false;
  }
}

/** Asks for the canister (or retries a failed creation), then watches it to its end. */
async function startCreation(): Promise<void> {
  say('');
  let s: CreationStatus;
  try {
    s = await conn.client.createPersonalCanister();
  } catch (e) {
    showError(describeError(e));
    return;
  }
  renderCreation(s);
  await watch();
}

async function watch(): Promise<void> {
  let final: CreationStatus | null = null;
  try {
    final = await conn.client.watchCreation({ onUpdate: renderCreation });
    renderCreation(final);
    say(final.state === 'Completed' ? 'Your capsule now lives in your personal canister.' : '');
  } catch (e) {
    showError(describeError(e));
  }
  await refreshCapsule();
  await showAfterHandoff(final);
}

async function main(): Promise<void> {
  const config = configFromUrl();
  conn = await connect(config);
  ui.who.textContent = `Signed in as ${config.transport === 'icemu' ? config.caller : 'you'} (${conn.principal.toText()})`;
  ui.who.dataset.principal = conn.principal.toText();

  ui.create.onclick = () => void guarded(startCreation);
  ui.retry.onclick = () => void guarded(startCreation);
  ui.capsuleForm.onsubmit = (ev) => {
    ev.preventDefault();
    void guarded(async () => {
      const actor = await conn.client.capsuleActor();
      const r = await actor.create_capsule({ name: ui.capsuleName.value, bio: '', settings: [] });
      if ('Err' in r) throw new CapsuleCallError(r.Err);
      await refreshCapsule();
    });
  };
  ui.memoryForm.onsubmit = (ev) => {
    ev.preventDefault();
    void guarded(async () => {
      const files = Array.from(ui.memoryFile.files ?? []);
      const actor = await conn.client.capsuleActor();
      ui.uploadStatus.textContent = '';
      ui.uploads.replaceChildren();
      const title = ui.memoryTitle.value;
      let last: Memory | null = null;
      // One memory per file (a note when there is none), each upload with its own progress.
      for (const file of files.length ? files : [null]) {
        const memoryTitle = files.length > 1 && file ? `${title}: ${file.name}` : title;
        if (!file) {
          last = await addMemoryWithFile(actor, { title: memoryTitle });
          continue;
        }
        const mime = file.type || 'application/octet-stream';
        const item = uploadItem(file.name);
        ui.uploads.append(item.li);
        item.update(0, file.size);
        try {
          const ref = await uploadBlob(actor, new Uint8Array(await file.arrayBuffer()), mime, item.update);
          last = unwrapCapsule(
            await actor.add_memory({
              title: memoryTitle,
              description: '',
              kind: kindForMime(mime),
              tags: [],
              encryption: [],
              blobs: [ref],
            }),
          );
          item.done(`${formatBytes(file.size)} uploaded`, true);
        } catch (e) {
          item.done(describeError(e), false);
          throw e;
        }
      }
      ui.memoryForm.reset();
      await refreshCapsule();
      // Said last, once the list shows the new memories and the form takes the next ones.
      if (last) {
        ui.uploadStatus.textContent = files.length > 1 ? `added ${files.length} memories` : `added “${last.title}”`;
        ui.uploadStatus.dataset.addedId = last.id.toString();
      }
    });
  };

  const status = await conn.client.status();
  renderCreation(status);
  await refreshCapsule();
  await showAfterHandoff(status);
  document.body.dataset.ready = 'true';
  if (status && status.state !== 'Completed' && status.state !== 'Failed') await guarded(watch);
}

main().catch((e) => {
  say(describeError(e));
  document.body.dataset.ready = 'error';
});
