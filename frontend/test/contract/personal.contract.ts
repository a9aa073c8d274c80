// After the handoff, as the client uses it: the capsule served by the personal canister, the
// shared copy left read-only, the cycles outlook and module version the user page's panel
// shows, and "download my capsule". Run against the fake (test/fake.ts's backend handing off
// to test/fake_personal.ts) and against a personal canister a real migration made on icemu.
import { blake3 } from '@noble/hashes/blake3.js';
import { fetchModule, upgradeAvailable, type ModuleSource } from '../../src/after_handoff';
import { describe, expect, it } from 'vitest';
import { fileBytes } from '../../browser/harness';
import { concat, fetchManifest, hex, writeArchive, type ArchiveSource } from '../../src/client/archive';
import type { ApiVersion, CyclesOutlook } from '../../src/bindings/personal/personal.did';
import { PersonalCanisterClient, type CreationStatus } from '../../src/client/creation';
import { CapsuleCallError } from '../../src/client/errors';
import type { CapsuleService } from '../../src/client/types';
import { CHUNK_SIZE, addMemoryWithFile, listAllMemories, readBlob } from '../../src/client/upload';
import { BACKEND_ID, FakeBackend } from '../fake';
import { FakeModuleSource, FakePersonal } from '../fake_personal';
import { userWithCapsule } from './real';

/** The personal canister's methods the client calls after the handoff. */
type Personal = CapsuleService &
  ArchiveSource & {
    cycles_outlook(): Promise<CyclesOutlook>;
    module_version(): Promise<ApiVersion>;
  };

interface Handoff {
  client: PersonalCanisterClient;
  /** The capsule API on the shared backend. */
  shared: CapsuleService;
  personal: (id: CreationStatus['canisterId'] & object) => Personal;
  /** The backend's module endpoints (what an upgrade fetches). */
  modules: ModuleSource;
  /** The file added as a memory before the creation. */
  file: Uint8Array;
  done: CreationStatus;
}

const FILE_BYTES = 300_000;
const CAPSULE_NAME = 'Contract';

async function fake(): Promise<Omit<Handoff, 'done' | 'file'>> {
  const backend = new FakeBackend();
  backend.capsule = { ...backend.capsule!, name: CAPSULE_NAME };
  const personals = new Map<string, FakePersonal>();
  const personal = (id: Parameters<Handoff['personal']>[0]) => {
    const p = personals.get(id.toText()) ?? FakePersonal.handoff(backend, id);
    personals.set(id.toText(), p);
    return p;
  };
  const client = new PersonalCanisterClient({ backend, backendId: BACKEND_ID, personal, sleep: async () => {} });
  // The module the fake ships: the version its personal canisters run, in 1 MiB chunks.
  const module = fileBytes(2_500_000, 13);
  return { client, shared: backend, personal, modules: new FakeModuleSource(module, new FakePersonal(BACKEND_ID).moduleVersion) };
}

async function real(): Promise<Omit<Handoff, 'done' | 'file'>> {
  const conn = await userWithCapsule('personal', CAPSULE_NAME);
  return { client: conn.client, shared: conn.backend, personal: (id) => conn.personal(id), modules: conn.backend };
}

/** A capsule with a file moved to its personal canister: the creation run to Completed. */
async function handoff(make: () => Promise<Omit<Handoff, 'done' | 'file'>>): Promise<Handoff> {
  const w = await make();
  const file = fileBytes(FILE_BYTES, 11);
  await addMemoryWithFile(w.shared, { title: 'A photo', file: { bytes: file, mimeType: 'image/png' } });
  await w.client.createPersonalCanister();
  const done = await w.client.watchCreation();
  if (done.state !== 'Completed' || !done.canisterId) throw new Error(`the creation ended ${done.state}: ${done.error}`);
  return { ...w, file, done };
}

describe.each([
  ['the fake personal canister', fake],
  ['a personal canister a real migration made on icemu', real],
])('after the handoff, with %s', (_name, make) => {
  let world: Promise<Handoff> | undefined;
  const w = () => (world ??= handoff(make));

  it('the capsule is served by the personal canister: the same capsule, memory and file the shared copy had', async () => {
    const { client, done, file } = await w();
    const target = await client.capsuleTarget();
    expect(target.servedBy).toBe('personal');
    expect(target.canisterId.toText()).toBe(done.canisterId?.toText());
    const info = await target.actor.get_capsule();
    if (!('Ok' in info)) throw new Error('get_capsule failed on the personal canister');
    expect(info.Ok.name).toBe(CAPSULE_NAME);
    expect(info.Ok.owner.toText()).toBe(done.record.owner.toText());
    expect(info.Ok.moved_to).toEqual([]);
    expect([info.Ok.memory_count, info.Ok.blob_count, info.Ok.blob_bytes]).toEqual([1n, 1n, BigInt(FILE_BYTES)]);
    const memories = await listAllMemories(target.actor);
    expect(memories.map((m) => m.title)).toEqual(['A photo']);
    const ref = memories[0]?.blobs[0];
    expect(ref && hex(ref.hash)).toBe(hex(blake3(file)));
    expect(await readBlob(target.actor, ref!)).toEqual(file);
  });

  it('the shared copy names the personal canister and refuses a new memory with CapsuleMoved', async () => {
    const { shared, done } = await w();
    const info = await shared.get_capsule();
    if (!('Ok' in info)) throw new Error('get_capsule failed on the backend');
    expect(info.Ok.moved_to.map((p) => p.toText())).toEqual([done.canisterId?.toText()]);
    const e = await addMemoryWithFile(shared, { title: 'late', file: { bytes: fileBytes(1_000, 12), mimeType: 'text/plain' } }).catch(
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(CapsuleCallError);
    expect((e as CapsuleCallError).kind).toBe('CapsuleMoved');
    expect(((await shared.get_capsule()) as { Ok: { memory_count: bigint } }).Ok.memory_count).toBe(1n);
  });

  it('the cycles outlook: the verified root, the running module, no timers, and the days the balance above the freezing threshold pays for', async () => {
    const { personal, done } = await w();
    const p = personal(done.canisterId!);
    const o = await p.cycles_outlook();
    expect(o.root.map(hex)).toEqual([hex((done.record.manifest[0] as { root: Uint8Array }).root)]);
    expect(o.module_version).toEqual(await p.module_version());
    expect(o.timers_per_day).toBe(0n);
    expect(o.burn_per_day).toBe(o.storage_per_day + o.timers_per_day);
    expect(o.burn_per_day).toBeGreaterThan(0n);
    expect(o.freezing_threshold_cycles).toBe((o.storage_per_day * o.freezing_threshold_seconds) / 86_400n);
    expect(o.balance).toBeGreaterThan(o.freezing_threshold_cycles);
    expect(o.days_until_frozen).toBe((o.balance - o.freezing_threshold_cycles) / o.burn_per_day);
  });

  it('"download my capsule": the archive has the export root and the file byte for byte, and its manifest counts what the canister holds, as the export did', async () => {
    const { personal, done, file } = await w();
    const p = personal(done.canisterId!);
    const exportRoot = hex((done.record.manifest[0] as { root: Uint8Array }).root);
    const m = await fetchManifest(p);
    expect(hex(m.header.root)).toBe(exportRoot);
    expect(m.header.owner.toText()).toBe(done.record.owner.toText());
    expect(m.capsule.name).toBe(CAPSULE_NAME);
    expect(m.connections).toEqual([]);
    expect(m.memories.map((x) => [x.title, x.kind, x.blobs.map((b) => hex(b.hash))])).toEqual([['A photo', 'photo', [hex(blake3(file))]]]);
    expect(m.blobs.map((b) => [hex(b.hash), b.size, b.chunk_hashes.length])).toEqual([
      [hex(blake3(file)), BigInt(FILE_BYTES), Math.ceil(FILE_BYTES / CHUNK_SIZE)],
    ]);
    expect([m.header.memory_count, m.header.blob_count, m.header.total_blob_bytes, m.header.total_chunks]).toEqual([
      1n,
      1n,
      BigInt(FILE_BYTES),
      BigInt(Math.ceil(FILE_BYTES / CHUNK_SIZE)),
    ]);
    const exported = done.record.manifest[0] as NonNullable<(typeof done.record.manifest)[0]>;
    expect([m.header.memory_count, m.header.connection_count, m.header.blob_count, m.header.total_blob_bytes, m.header.total_chunks]).toEqual([
      exported.memories,
      exported.connections,
      exported.blobs,
      exported.blob_bytes,
      exported.chunks,
    ]);
    expect([done.progress.bytes_done, done.progress.bytes_total]).toEqual([BigInt(FILE_BYTES), BigInt(FILE_BYTES)]);
    const { parts, root } = await writeArchive(p);
    expect(root).toBe(exportRoot);
    expect(Buffer.from(concat(parts)).indexOf(Buffer.from(file))).toBeGreaterThan(0);
  });

  it('the backend ships the module the canister runs: its chunks add up to its size and SHA-256, none past the last, no upgrade offered', async () => {
    const { personal, done, modules } = await w();
    const { module, chunks } = await fetchModule(modules);
    expect(chunks).toHaveLength(module.chunk_count);
    expect(chunks.slice(0, -1).every((c) => BigInt(c.length) === module.chunk_size)).toBe(true);
    expect(BigInt(chunks[chunks.length - 1]?.length ?? 0)).toBeLessThanOrEqual(module.chunk_size);
    expect(BigInt(concat(chunks).length)).toBe(module.size);
    const past = await modules.personal_module_chunk(module.chunk_count);
    expect(Object.keys(past)).toEqual(['Err']);
    expect(Object.keys((past as { Err: object }).Err)).toEqual(['InvalidArgument']);
    const running = await personal(done.canisterId!).module_version();
    expect(module.api_version).toEqual(running);
    expect(upgradeAvailable(module.api_version, running)).toBe('current');
  });
});
