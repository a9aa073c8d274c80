// The status page: create the capsule and a memory with a file, ask for the personal canister,
// watch the creation (timeline, byte progress), show the error with a retry button, and say
// which canister serves the capsule.
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
  type ConnectConfig,
  type Connection,
  type CreationStatus,
  type CapsuleTarget,
  type Memory,
} from './client';

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
  timeline: $('timeline'),
  error: $('error'),
  errorText: $('error-text'),
  retry: $('retry') as HTMLButtonElement,
  message: $('message'),
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

function memoryItem(m: Memory, target: CapsuleTarget): HTMLLIElement {
  const li = document.createElement('li');
  li.dataset.memoryId = m.id.toString();
  const title = document.createElement('strong');
  title.className = 'memory-title';
  title.textContent = m.title;
  li.append(title, ` — ${m.blobs.map((b) => `${b.mime_type}, ${formatBytes(b.size)}`).join('; ') || 'no file'} `);
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
    li.append(read, out);
  }
  return li;
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
  try {
    const final = await conn.client.watchCreation({ onUpdate: renderCreation });
    renderCreation(final);
    say(final.state === 'Completed' ? 'Your capsule now lives in your personal canister.' : '');
  } catch (e) {
    showError(describeError(e));
  }
  await refreshCapsule();
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
      const file = ui.memoryFile.files?.[0];
      const actor = await conn.client.capsuleActor();
      ui.uploadStatus.textContent = '';
      const m = await addMemoryWithFile(
        actor,
        {
          title: ui.memoryTitle.value,
          ...(file
            ? { file: { bytes: new Uint8Array(await file.arrayBuffer()), mimeType: file.type || 'application/octet-stream' } }
            : {}),
        },
        (sent, total) => {
          ui.uploadStatus.textContent = `uploaded ${formatBytes(sent)} of ${formatBytes(total)}`;
        },
      );
      ui.uploadStatus.textContent = `added “${m.title}”`;
      ui.uploadStatus.dataset.addedId = m.id.toString();
      ui.memoryForm.reset();
      await refreshCapsule();
    });
  };

  const status = await conn.client.status();
  renderCreation(status);
  await refreshCapsule();
  document.body.dataset.ready = 'true';
  if (status && status.state !== 'Completed' && status.state !== 'Failed') await guarded(watch);
}

main().catch((e) => {
  say(describeError(e));
  document.body.dataset.ready = 'error';
});
