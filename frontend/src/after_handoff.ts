// After the handoff, on the user page: the personal canister's cycles outlook (with a warning
// before it runs low), an upgrade button (the module the backend ships, fetched in chunks,
// its SHA-256 checked, installed by the owner in upgrade mode through the chunk store) and
// "download my capsule" (the archive of ./client/archive.ts).
//
// The user page (main.ts) renders it into #after-handoff once the creation is Completed, with
// the connection's actors, `icManagement(conn.agent, canisterId)` and the creation record's
// `purge_check`.
import { Actor, type HttpAgent } from '@icp-sdk/core/agent';
import { IDL } from '@icp-sdk/core/candid';
import { Principal } from '@icp-sdk/core/principal';
import type { ApiVersion, PersonalModule, PurgeCheck } from './bindings/backend/backend.did';
import type { CyclesOutlook } from './bindings/personal/personal.did';
import { concat, hex, writeArchive, type ArchiveSource } from './client/archive';
import { formatCycles } from './client/errors';

/** Below this many days until frozen the page warns; below `LOW_DAYS` it says it is urgent. */
export const WARN_DAYS = 90n;
/** The backend's default `purge_min_days`: below it the shared copy is not purged. */
export const LOW_DAYS = 30n;

export type OutlookLevel = 'ok' | 'warn' | 'low';

/** What the page says about an outlook. */
export function describeOutlook(o: CyclesOutlook): { level: OutlookLevel; text: string } {
  const days = o.days_until_frozen;
  const lasts = days >= 18_446_744_073_709_551_615n ? 'indefinitely' : `for about ${days} days`;
  const base = `Your canister holds ${formatCycles(o.balance)} and burns ${formatCycles(o.burn_per_day)} a day (storage ${formatCycles(
    o.storage_per_day,
  )}, timers ${formatCycles(o.timers_per_day)}): it runs ${lasts} before it freezes at ${formatCycles(o.freezing_threshold_cycles)}.`;
  if (days < LOW_DAYS) {
    return {
      level: 'low',
      text: `${base} Top it up now (deposit_cycles): a frozen canister stops answering, and the shared copy is kept until it holds ${LOW_DAYS} days.`,
    };
  }
  if (days < WARN_DAYS) return { level: 'warn', text: `${base} Plan a top-up within the next ${days - LOW_DAYS} days.` };
  return { level: 'ok', text: base };
}

/**
 * Why the shared copy of the capsule is not purged yet, from the creation record's
 * `purge_check` (`null`: nothing holds it).
 */
export function describePurgeHold(check: [] | [PurgeCheck]): string | null {
  const c = check[0];
  const hold = c?.hold[0];
  if (!c || c.cleared || !hold) return null;
  const when =
    c.next_check_at[0] !== undefined
      ? ` It is checked again at ${new Date(Number(c.next_check_at[0] / 1_000_000n)).toISOString()}.`
      : ' The service stopped checking: ask to purge again when this is fixed.';
  if ('Checking' in hold) return 'The service is checking your canister before it removes the shared copy.';
  if ('LowCycles' in hold) {
    return `The shared copy is kept: your canister holds ${hold.LowCycles.days_left} days of cycles, ${hold.LowCycles.required_days} are needed before the only copy is yours. Top it up.${when}`;
  }
  if ('RootMismatch' in hold) {
    return `The shared copy is kept: your canister no longer holds the data that was moved (root ${
      hold.RootMismatch.actual[0] ?? 'none'
    }, expected ${hold.RootMismatch.expected}).${when}`;
  }
  if ('NoAnswer' in hold) return `The shared copy is kept: your canister did not answer (${hold.NoAnswer.message}).${when}`;
  if ('NotAsked' in hold) return `The shared copy is kept: your canister could not be asked (${hold.NotAsked.reason}).${when}`;
  return `The shared copy is kept: your canister's answer could not be read (${hold.UntrustedReply.reason}).${when}`;
}

/** Whether the shipped module is an upgrade for a canister running `running`. */
export function upgradeAvailable(shipped: ApiVersion, running: ApiVersion): 'upgrade' | 'current' | 'incompatible' {
  if (shipped.major !== running.major) return 'incompatible';
  if (shipped.minor > running.minor) return 'upgrade';
  return 'current';
}

/** The backend's module endpoints. */
export interface ModuleSource {
  personal_module(): Promise<PersonalModule>;
  personal_module_chunk(index: number): Promise<{ Ok: Uint8Array | number[] } | { Err: unknown }>;
}

/** The management canister calls an upgrade needs (made by the owner, the only controller). */
export interface ManagementService {
  upload_chunk(arg: { canister_id: Principal; chunk: Uint8Array }): Promise<{ hash: Uint8Array | number[] }>;
  install_chunked_code(arg: {
    mode: { upgrade: [] | [{ skip_pre_upgrade: [] | [boolean]; wasm_memory_persistence: [] | [{ keep: null } | { replace: null }] }] };
    target_canister: Principal;
    store_canister: [] | [Principal];
    chunk_hashes_list: { hash: Uint8Array | number[] }[];
    wasm_module_hash: Uint8Array;
    arg: Uint8Array;
    sender_canister_version: [] | [bigint];
  }): Promise<void>;
}

export class UpgradeError extends Error {}

async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}

/** The module the backend ships, fetched chunk by chunk; refused unless its SHA-256 matches. */
export async function fetchModule(src: ModuleSource): Promise<{ module: PersonalModule; chunks: Uint8Array[] }> {
  const module = await src.personal_module();
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < module.chunk_count; i++) {
    const r = await src.personal_module_chunk(i);
    if (!('Ok' in r)) throw new UpgradeError(`personal_module_chunk ${i} failed`);
    chunks.push(r.Ok instanceof Uint8Array ? r.Ok : Uint8Array.from(r.Ok));
  }
  const bytes = concat(chunks);
  if (BigInt(bytes.length) !== module.size) {
    throw new UpgradeError(`the module came back with ${bytes.length} bytes, the backend says ${module.size}`);
  }
  const hash = hex(await sha256(bytes));
  if (hash !== hex(module.sha256)) {
    throw new UpgradeError(`the module's SHA-256 is ${hash}, the backend publishes ${hex(module.sha256)}: not installed`);
  }
  return { module, chunks };
}

/** `null` where `opt PersonalInitArgs` is expected (candid: none): the upgrade keeps the
 * canister's configuration. */
const NO_ARGS = new Uint8Array(IDL.encode([IDL.Null], [null]));

/**
 * Upgrades `canisterId` to the shipped module as its owner: chunks uploaded to its own chunk
 * store, then `install_chunked_code` in upgrade mode with the checked hash. The canister
 * refuses a downgrade or a major change itself (its `post_upgrade` traps; the old module
 * keeps running).
 */
export async function upgradePersonal(
  src: ModuleSource,
  management: ManagementService,
  canisterId: Principal,
  onStep?: (text: string) => void,
): Promise<ApiVersion> {
  const { module, chunks } = await fetchModule(src);
  const hashes: { hash: Uint8Array | number[] }[] = [];
  for (const [i, chunk] of chunks.entries()) {
    onStep?.(`uploading chunk ${i + 1} of ${chunks.length}`);
    hashes.push(await management.upload_chunk({ canister_id: canisterId, chunk }));
  }
  onStep?.('installing');
  await management.install_chunked_code({
    mode: { upgrade: [{ skip_pre_upgrade: [], wasm_memory_persistence: [] }] },
    target_canister: canisterId,
    store_canister: [],
    chunk_hashes_list: hashes,
    wasm_module_hash: module.sha256,
    arg: NO_ARGS,
    sender_canister_version: [],
  });
  return module.api_version;
}

/** The management canister as `agent`'s identity, for calls about `canisterId`. */
export function icManagement(agent: HttpAgent, canisterId: Principal): ManagementService {
  const idl: IDL.InterfaceFactory = ({ IDL }) => {
    const ChunkHash = IDL.Record({ hash: IDL.Vec(IDL.Nat8) });
    const Mode = IDL.Variant({
      install: IDL.Null,
      reinstall: IDL.Null,
      upgrade: IDL.Opt(
        IDL.Record({
          skip_pre_upgrade: IDL.Opt(IDL.Bool),
          wasm_memory_persistence: IDL.Opt(IDL.Variant({ keep: IDL.Null, replace: IDL.Null })),
        }),
      ),
    });
    return IDL.Service({
      upload_chunk: IDL.Func([IDL.Record({ canister_id: IDL.Principal, chunk: IDL.Vec(IDL.Nat8) })], [ChunkHash], []),
      install_chunked_code: IDL.Func(
        [
          IDL.Record({
            mode: Mode,
            target_canister: IDL.Principal,
            store_canister: IDL.Opt(IDL.Principal),
            chunk_hashes_list: IDL.Vec(ChunkHash),
            wasm_module_hash: IDL.Vec(IDL.Nat8),
            arg: IDL.Vec(IDL.Nat8),
            sender_canister_version: IDL.Opt(IDL.Nat64),
          }),
        ],
        [],
        [],
      ),
    });
  };
  return Actor.createActor<ManagementService>(idl, {
    agent,
    canisterId: Principal.managementCanister(),
    effectiveCanisterId: canisterId,
  }) as unknown as ManagementService;
}

/** What the panel needs. */
export interface AfterHandoffDeps {
  backend: ModuleSource;
  personal: ArchiveSource & {
    cycles_outlook(): Promise<CyclesOutlook>;
    module_version(): Promise<ApiVersion>;
  };
  canisterId: Principal;
  management: ManagementService;
  /** The creation record's `purge_check` (from `get_creation_status`), to say why the shared
   * copy is kept. */
  purgeCheck?: () => Promise<[] | [PurgeCheck]>;
  /** Saves the archive (default: a download link clicked in the page). */
  save?: (name: string, parts: Uint8Array[]) => void;
}

function saveInPage(name: string, parts: Uint8Array[]): void {
  const url = URL.createObjectURL(new Blob(parts as BlobPart[], { type: 'application/x-tar' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

const version = (v: ApiVersion) => `${v.major}.${v.minor}`;

/**
 * Fills `el` with the outlook, why the shared copy is kept, and the upgrade, download and
 * check-again buttons. Stable hooks for tests (ids are unique: one panel per page):
 * `#outlook[data-level][data-days-until-frozen][data-balance][data-burn-per-day]`,
 * `#purge-hold`, `#upgrade[data-plan][data-shipped][data-running]`, `#download`,
 * `#outlook-refresh`, `#after-handoff-status[data-step][data-root]`; `el[data-ready]` once
 * read (`error` when the canister could not be read), `el[data-refreshes]` counts the reads.
 */
export async function renderAfterHandoff(el: HTMLElement, deps: AfterHandoffDeps): Promise<void> {
  const doc = el.ownerDocument;
  el.replaceChildren();
  delete el.dataset.ready;
  el.dataset.refreshes = '0';
  const make = <K extends keyof HTMLElementTagNameMap>(tag: K, id: string, text = '') => {
    const e = doc.createElement(tag);
    e.id = id;
    e.className = id;
    e.textContent = text;
    return e;
  };
  const outlook = make('p', 'outlook');
  const purge = make('p', 'purge-hold');
  purge.hidden = true;
  const upgrade = make('button', 'upgrade', 'Upgrade my canister');
  const download = make('button', 'download', 'Download my capsule');
  const again = make('button', 'outlook-refresh', 'Check again');
  for (const b of [upgrade, download, again]) b.type = 'button';
  const status = make('p', 'after-handoff-status');
  status.setAttribute('role', 'status');
  const actions = doc.createElement('div');
  actions.className = 'after-handoff-actions';
  actions.append(upgrade, download, again);
  el.append(outlook, purge, actions, status);
  const step = (name: string, text: string) => {
    status.dataset.step = name;
    status.textContent = text;
  };

  const read = async () => {
    const o = await deps.personal.cycles_outlook();
    const d = describeOutlook(o);
    outlook.textContent = d.text;
    outlook.dataset.level = d.level;
    outlook.dataset.daysUntilFrozen = o.days_until_frozen.toString();
    outlook.dataset.balance = o.balance.toString();
    outlook.dataset.burnPerDay = o.burn_per_day.toString();
    const hold = deps.purgeCheck ? describePurgeHold(await deps.purgeCheck()) : null;
    purge.textContent = hold ?? '';
    purge.hidden = hold === null;
    const [shipped, running] = await Promise.all([deps.backend.personal_module(), deps.personal.module_version()]);
    const plan = upgradeAvailable(shipped.api_version, running);
    upgrade.dataset.plan = plan;
    upgrade.dataset.shipped = version(shipped.api_version);
    upgrade.dataset.running = version(running);
    upgrade.disabled = plan !== 'upgrade';
    upgrade.textContent = plan === 'upgrade' ? `Upgrade my canister to ${version(shipped.api_version)}` : 'Upgrade my canister';
    upgrade.title =
      plan === 'upgrade'
        ? `Version ${version(shipped.api_version)} is available (you run ${version(running)}).`
        : plan === 'current'
          ? `Your canister runs the latest version (${version(running)}).`
          : `Version ${version(shipped.api_version)} is not compatible with your data (${version(running)}).`;
  };
  /** Reads everything again; a failure is said in the outlook's place. */
  const refresh = async () => {
    again.disabled = true;
    try {
      await read();
      el.dataset.ready = 'true';
    } catch (e) {
      outlook.dataset.level = 'unknown';
      outlook.textContent = `Your canister could not be read: ${(e as Error).message}`;
      el.dataset.ready = 'error';
    } finally {
      el.dataset.refreshes = String(Number(el.dataset.refreshes ?? '0') + 1);
      again.disabled = false;
    }
  };
  again.onclick = () => void refresh();
  upgrade.onclick = async () => {
    upgrade.disabled = true;
    try {
      const v = await upgradePersonal(deps.backend, deps.management, deps.canisterId, (t) => step('upgrading', t));
      step('upgraded', `Upgraded to version ${version(v)}; your data is unchanged.`);
    } catch (e) {
      step('upgrade-failed', `The upgrade did not happen: ${(e as Error).message}`);
    }
    await refresh();
  };
  download.onclick = async () => {
    download.disabled = true;
    try {
      const { parts, root } = await writeArchive(deps.personal, (p) => {
        step('downloading', `Downloading: ${p.blobsDone} of ${p.blobs} files, ${p.bytesDone} of ${p.bytes} bytes`);
      });
      (deps.save ?? saveInPage)(`capsule-${root.slice(0, 16)}.tar`, parts);
      status.dataset.root = root;
      step('saved', `Saved. Its root is ${root}: check it with \`manifest verify\`.`);
    } catch (e) {
      step('download-failed', `The download failed: ${(e as Error).message}`);
    } finally {
      download.disabled = false;
    }
  };
  await refresh();
}
