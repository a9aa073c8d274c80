// The client's creation cases run twice: against the fake backend the unit tests use
// (test/fake.ts) and against the real backend wasm on `icemu serve`. A case that passes on the
// real backend and fails on the fake means the fake is wrong.
import { FAULTS, fileBytes } from '../../browser/harness';
import { blake3 } from '@noble/hashes/blake3.js';
import { describe, expect, it } from 'vitest';
import { PersonalCanisterClient, type CreationStatus } from '../../src/client/creation';
import { FactoryCallError } from '../../src/client/errors';
import { CREATION_STATES, type CapsuleService, type CreationStateName } from '../../src/client/types';
import { addMemoryWithFile, listAllMemories, readBlob } from '../../src/client/upload';
import { BACKEND_ID, FakeBackend, failingInstall, happyScript, hex } from '../fake';
import { FakePersonal } from '../fake_personal';
import { icemu, setCreationEnabled, userWithCapsule } from './real';

interface World {
  client: PersonalCanisterClient;
  /** The caller's capsule API on the backend (the caller has a capsule). */
  capsule: CapsuleService;
  backendId: string;
  /** Lets `install_code` through again after a world made with `installFails`. */
  heal: () => void;
  /** Switches new creations off or on (an admin's `admin_set_creation_enabled`). */
  setCreationEnabled: (enabled: boolean) => void;
}

interface WorldOptions {
  /** The first attempt's `install_code` is rejected (CANISTER_ERROR) until `heal()`. */
  installFails?: boolean;
}

/** The fake: a backend that already holds the caller's capsule, polls that never wait. */
async function fake(opts: WorldOptions = {}): Promise<World> {
  const backend = new FakeBackend(opts.installFails ? [failingInstall(), happyScript()] : [happyScript()]);
  const client = new PersonalCanisterClient({
    backend,
    backendId: BACKEND_ID,
    personal: (id) => FakePersonal.handoff(backend, id),
    sleep: async () => {},
  });
  return {
    client,
    capsule: backend,
    backendId: BACKEND_ID.toText(),
    heal: () => {},
    setCreationEnabled: (enabled) => {
      backend.createError = enabled ? null : { CreationDisabled: null };
    },
  };
}

/** The real backend, as a new icemu identity that has just created its capsule. */
async function real(opts: WorldOptions = {}): Promise<World> {
  const emu = icemu();
  const conn = await userWithCapsule('client');
  if (opts.installFails) FAULTS.inject(emu);
  return {
    client: conn.client,
    capsule: conn.backend,
    backendId: conn.backendId.toText(),
    heal: () => FAULTS.clear(emu),
    setCreationEnabled,
  };
}

/** The states `seen` went through, each once, in the order first seen. */
function distinct(seen: CreationStatus[]): CreationStateName[] {
  return seen.map((s) => s.state).filter((s, i, a) => a[i - 1] !== s);
}

/** Whether `states` follow the creation's order (any may be skipped between two polls). */
function inOrder(states: CreationStateName[]): boolean {
  const at = states.map((s) => CREATION_STATES.indexOf(s));
  return at.every((n, i) => n >= 0 && (i === 0 || n > (at[i - 1] as number)));
}

describe.each([
  ['the fake backend', fake],
  ['the real backend on icemu', real],
])('the client with %s', (_name, world) => {
  // One creation run to Completed (watched from its request), made by the first case that asks.
  let completed: Promise<{ w: World; first: CreationStatus; seen: CreationStatus[]; done: CreationStatus }> | undefined;
  const completedRun = () =>
    (completed ??= (async () => {
      const w = await world();
      const first = await w.client.createPersonalCanister();
      const seen: CreationStatus[] = [];
      const done = await w.client.watchCreation({ onUpdate: (s) => seen.push(s) });
      return { w, first, seen, done };
    })());

  it('a file added as a memory is a blob of its size and BLAKE3 hash that reads back, counted by the capsule', async () => {
    const { capsule } = await world();
    const bytes = fileBytes(600_000, 3);
    const memory = await addMemoryWithFile(capsule, { title: 'A photo', file: { bytes, mimeType: 'image/png' } });
    expect(memory.kind).toEqual({ Photo: null });
    expect(memory.blobs).toHaveLength(1);
    const ref = memory.blobs[0] as NonNullable<(typeof memory.blobs)[0]>;
    expect(ref.size).toBe(600_000n);
    expect(ref.mime_type).toBe('image/png');
    expect(hex(ref.hash)).toBe(hex(blake3(bytes)));
    expect(await readBlob(capsule, ref)).toEqual(bytes);
    expect((await listAllMemories(capsule)).map((m) => m.id)).toEqual([memory.id]);
    const info = await capsule.get_capsule();
    if (!('Ok' in info)) throw new Error('get_capsule failed');
    expect([info.Ok.memory_count, info.Ok.blob_count, info.Ok.blob_bytes]).toEqual([1n, 1n, 600_000n]);
  });

  it('has no creation before the first request', async () => {
    const { client } = await world();
    expect(await client.status()).toBeNull();
  });

  it('answers a request with a NotStarted record of attempt 1, and a repeat with the same creation', async () => {
    const { client } = await world();
    const first = await client.createPersonalCanister();
    expect(first.state).toBe('NotStarted');
    expect(first.attempts).toBe(1);
    expect(first.canisterId).toBeNull();
    expect(first.error).toBeNull();
    expect(first.timeline.map((t) => t.state)).toEqual(['NotStarted']);
    expect(first.record.quote).toEqual([]);
    expect(first.record.cycles_consumed).toBe(0n);
    const again = await client.createPersonalCanister();
    expect(again.migrationId).toBe(first.migrationId);
    expect(again.attempts).toBe(1);
    expect((await client.status())?.migrationId).toBe(first.migrationId);
  });

  it('goes through the states in order to Completed, and a request after that returns the completed record', async () => {
    const {
      w: { client, backendId },
      first,
      seen,
      done,
    } = await completedRun();

    expect(done.state).toBe('Completed');
    expect(inOrder(distinct(seen))).toBe(true);
    expect(done.timeline.map((t) => t.state)).toEqual([...CREATION_STATES]);
    expect(done.fraction).toBe(1);
    expect(done.progress.bytes_done).toBe(done.progress.bytes_total);
    expect(done.error).toBeNull();
    expect(done.deadlineAt).toBeNull();
    expect(done.canisterId).not.toBeNull();
    expect(done.canisterId?.toText()).not.toBe(backendId);
    expect(done.record.created_canisters[0]?.map((c) => c.toText())).toEqual([done.canisterId?.toText()]);

    const again = await client.createPersonalCanister();
    expect(again.state).toBe('Completed');
    expect(again.migrationId).toBe(first.migrationId);
    expect(again.attempts).toBe(1);
    expect(again.canisterId?.toText()).toBe(done.canisterId?.toText());
  });

  it('a completed record carries its manifest, progress counting all of it, its quote, and what the reserve paid: the quote plus the funding', async () => {
    const { done } = await completedRun();
    const r = done.record;
    expect(r.manifest).toHaveLength(1);
    // The progress counts what the export found.
    const m = r.manifest[0] as NonNullable<(typeof r.manifest)[0]>;
    expect([r.progress.bytes_total, r.progress.chunks_total, r.progress.memories_total, r.progress.connections_total]).toEqual([
      m.blob_bytes,
      m.chunks,
      m.memories,
      m.connections,
    ]);
    expect([r.progress.bytes_done, r.progress.chunks_done, r.progress.memories_done]).toEqual([m.blob_bytes, m.chunks, m.memories]);
    const quote = r.quote[0];
    expect(quote?.total).toBeGreaterThan(0n);
    const funding = r.funding[0];
    expect(funding).toBeDefined();
    expect(funding?.funded_canister.map((c) => c.toText())).toEqual([done.canisterId?.toText()]);
    expect(funding?.sponsored).toBe(0n);
    expect(r.cycles_consumed).toBe((quote?.total ?? 0n) + (funding?.deposited ?? 0n));
  });

  it('while creation is off, a new request gets CreationDisabled and a caller with a creation still gets its record', async () => {
    const asked = await world();
    const fresh = await world();
    const first = await asked.client.createPersonalCanister();
    asked.setCreationEnabled(false);
    fresh.setCreationEnabled(false);
    try {
      const e = await fresh.client.createPersonalCanister().catch((x: unknown) => x);
      expect(e).toBeInstanceOf(FactoryCallError);
      expect((e as FactoryCallError).kind).toBe('CreationDisabled');
      expect(await fresh.client.status()).toBeNull();
      const again = await asked.client.createPersonalCanister();
      expect(again.migrationId).toBe(first.migrationId);
      expect(again.attempts).toBe(1);
    } finally {
      asked.setCreationEnabled(true);
      fresh.setCreationEnabled(true);
    }
  });

  it('fails in Installing when install_code is rejected, keeps the canister, and a retry completes as attempt 2', async () => {
    const { client, heal } = await world({ installFails: true });
    const first = await client.createPersonalCanister();
    const failed = await client.watchCreation();
    expect(failed.state).toBe('Failed');
    expect(failed.failedIn).toBe('Installing');
    expect(failed.errorKind).toBe('CallFailed');
    expect(failed.canisterId).not.toBeNull();
    expect(failed.deadlineAt).toBeNull();
    expect(failed.timeline.map((t) => t.state)).toEqual(['NotStarted', 'Exporting', 'Creating', 'Installing', 'Failed']);

    heal();
    const retried = await client.retry();
    expect(retried.migrationId).toBe(first.migrationId);
    expect(retried.attempts).toBe(2);
    expect(retried.error).toBeNull();
    const done = await client.watchCreation();
    expect(done.state).toBe('Completed');
    expect(done.attempts).toBe(2);
    expect(done.canisterId?.toText()).toBe(failed.canisterId?.toText());
  });
});
