// After the handoff: the outlook's warnings, the upgrade (module fetched in chunks, hash
// checked, installed through the chunk store) and "download my capsule", whose archive the
// Rust CLI (`manifest verify`) verifies.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Principal } from '@icp-sdk/core/principal';
import { describe, expect, it } from 'vitest';
import {
  describeOutlook,
  describePurgeHold,
  fetchModule,
  upgradeAvailable,
  upgradePersonal,
  type ManagementService,
} from '../src/after_handoff';
import type { CyclesOutlook, ManifestHeader, ManifestPageReply, PageCursor } from '../src/bindings/personal/personal.did';
import { concat, tarHeader, toJson, writeArchive, type ArchiveSource } from '../src/client/archive';
import { FakeModuleSource } from './fake_personal';

const DAY = 10_972_800_000n;

function outlook(days: bigint): CyclesOutlook {
  return {
    balance: (30n + days) * DAY,
    memory_bytes: 1n << 30n,
    storage_per_day: DAY,
    timers_per_day: 0n,
    burn_per_day: DAY,
    freezing_threshold_seconds: 30n * 86_400n,
    freezing_threshold_cycles: 30n * DAY,
    days_until_frozen: days,
    root: [],
    module_version: { major: 1, minor: 0 },
  };
}

describe('the outlook', () => {
  it('is calm with months left, warns under 90 days, and is urgent under 30', () => {
    expect(describeOutlook(outlook(180n)).level).toBe('ok');
    expect(describeOutlook(outlook(180n)).text).toContain('for about 180 days');
    const warn = describeOutlook(outlook(60n));
    expect(warn.level).toBe('warn');
    expect(warn.text).toContain('Plan a top-up within the next 30 days');
    const low = describeOutlook(outlook(10n));
    expect(low.level).toBe('low');
    expect(low.text).toContain('Top it up now');
  });
});

describe('the purge guard', () => {
  const check = (hold: any, next: bigint | null = 1_700_000_000_000_000_000n) =>
    [
      {
        checks: 1,
        last_check_at: [1n],
        cleared: false,
        hold: hold ? [hold] : [],
        next_check_at: next === null ? [] : [next],
        queue_key: 1n,
      },
    ] as any;
  it('says why the shared copy is kept and when it is checked again', () => {
    const low = describePurgeHold(check({ LowCycles: { days_left: 5n, required_days: 30 } }))!;
    expect(low).toContain('5 days of cycles, 30 are needed');
    expect(low).toContain('2023-11-14T22:13:20.000Z');
    const gave_up = describePurgeHold(check({ NoAnswer: { code: 5, message: 'trapped' } }, null))!;
    expect(gave_up).toContain('did not answer (trapped)');
    expect(gave_up).toContain('ask to purge again');
    expect(describePurgeHold(check({ RootMismatch: { expected: 'ab', actual: [] } }))).toContain('root none, expected ab');
  });
  it('says nothing when nothing holds the purge', () => {
    expect(describePurgeHold([])).toBeNull();
    expect(describePurgeHold(check(null))).toBeNull();
  });
});

describe('the upgrade', () => {
  it('is offered for a newer minor only', () => {
    expect(upgradeAvailable({ major: 1, minor: 1 }, { major: 1, minor: 0 })).toBe('upgrade');
    expect(upgradeAvailable({ major: 1, minor: 1 }, { major: 1, minor: 1 })).toBe('current');
    expect(upgradeAvailable({ major: 1, minor: 0 }, { major: 1, minor: 2 })).toBe('current');
    expect(upgradeAvailable({ major: 2, minor: 0 }, { major: 1, minor: 0 })).toBe('incompatible');
  });

  const bytes = Uint8Array.from({ length: 2_500_000 }, (_, i) => (i * 31) % 256);
  const CHUNK = 1 << 20;
  const source = async (tamper = false) => new FakeModuleSource(bytes, { major: 1, minor: 1 }, CHUNK, tamper ? 1 : null);

  it('installs the checked module through the chunk store as an upgrade', async () => {
    const canister = Principal.fromText('bd3sg-teaaa-aaaaa-qaaba-cai');
    const uploaded: Uint8Array[] = [];
    let installed: Parameters<ManagementService['install_chunked_code']>[0] | undefined;
    const management: ManagementService = {
      upload_chunk: async ({ canister_id, chunk }) => {
        expect(canister_id.toText()).toBe(canister.toText());
        uploaded.push(chunk);
        return { hash: new Uint8Array(await crypto.subtle.digest('SHA-256', chunk as Uint8Array<ArrayBuffer>)) };
      },
      install_chunked_code: async (arg) => {
        installed = arg;
      },
    };
    const v = await upgradePersonal(await source(), management, canister);
    expect(v).toEqual({ major: 1, minor: 1 });
    expect(Buffer.compare(concat(uploaded), bytes)).toBe(0);
    expect(installed?.chunk_hashes_list).toHaveLength(3);
    expect('upgrade' in installed!.mode).toBe(true);
    expect(installed?.target_canister.toText()).toBe(canister.toText());
  });

  it('refuses a module whose bytes do not match the published hash', async () => {
    await expect(fetchModule(await source(true))).rejects.toThrow(/SHA-256/);
  });
});

// ------------------------------------------------------------------ the archive

const root = resolve(__dirname, '..', '..');

/** The manifest of manifests/tests/common (written by the Rust archive test), candid-shaped. */
function fixture() {
  const text = readFileSync(join(__dirname, 'fixtures', 'capsule-manifest.json'), 'utf8').replace(
    /: (\d{10,})/g,
    ': "$1"',
  );
  const j = JSON.parse(text);
  const h = (s: string) => Uint8Array.from(s.match(/../g)!.map((b) => parseInt(b, 16)));
  const n = (x: string | number) => BigInt(x);
  const p = (s: string) => Principal.fromText(s);
  const header: ManifestHeader = {
    version: j.header.version,
    owner: p(j.header.owner),
    connection_count: n(j.header.connection_count),
    memory_count: n(j.header.memory_count),
    blob_count: n(j.header.blob_count),
    total_blob_bytes: n(j.header.total_blob_bytes),
    total_chunks: n(j.header.total_chunks),
    capsule_root: h(j.header.capsule_root),
    connections_root: h(j.header.connections_root),
    memories_root: h(j.header.memories_root),
    blobs_root: h(j.header.blobs_root),
    root: h(j.header.root),
  };
  const capsule = { ...j.capsule, owner: p(j.capsule.owner), created_at: n(j.capsule.created_at), updated_at: n(j.capsule.updated_at) };
  const connections = j.connections.map((c: any) => ({ ...c, peer: p(c.peer), created_at: n(c.created_at), updated_at: n(c.updated_at) }));
  const memories = j.memories.map((m: any) => ({
    ...m,
    id: n(m.id),
    created_at: n(m.created_at),
    updated_at: n(m.updated_at),
    blobs: m.blobs.map((b: any) => ({ ...b, hash: h(b.hash), size: n(b.size) })),
    encryption: m.encryption ? [{ scheme: m.encryption.scheme, wrapped_key: h(m.encryption.wrapped_key) }] : [],
  }));
  const blobs = j.blobs.map((b: any) => ({ hash: h(b.hash), size: n(b.size), chunk_hashes: b.chunk_hashes.map(h) }));
  return { header, capsule, connections, memories, blobs, rootHex: j.header.root as string };
}

/** `common::data(seed, len)` of the Rust fixture. */
function data(seed: number, len: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => {
    const x = Math.imul(i, 2_654_435_761 | 0) >>> 0;
    const s = seed % 32;
    const r = s === 0 ? x : ((x << s) | (x >>> (32 - s))) >>> 0;
    return (r & 0xff) ^ seed;
  });
}

/** A fake personal canister serving the fixture in pages of two leaves. */
function fakeCanister(tamper = false): ArchiveSource {
  const f = fixture();
  const byHash = new Map<string, Uint8Array>();
  for (const b of [data(1, 1000), data(2, 600_000), new Uint8Array()]) {
    const leaf = f.blobs.find((l: any) => l.size === BigInt(b.length))!;
    byHash.set(Buffer.from(leaf.hash).toString('hex'), b);
  }
  type Section = 'Capsule' | 'Connections' | 'Memories' | 'Blobs';
  const order: Section[] = ['Capsule', 'Connections', 'Memories', 'Blobs'];
  const leaves: Record<Section, unknown[]> = {
    Capsule: [f.capsule],
    Connections: f.connections,
    Memories: f.memories,
    Blobs: f.blobs,
  };
  return {
    get_manifest_page: async (cursor: PageCursor) => {
      const section = Object.keys(cursor.section)[0] as Section;
      const start = Number(cursor.index);
      const page = leaves[section].slice(start, start + 2);
      let next: [] | [PageCursor] = [];
      if (start + 2 < leaves[section].length) next = [{ section: cursor.section, index: BigInt(start + 2) }];
      else {
        const after = order.slice(order.indexOf(section) + 1).find((s) => leaves[s].length > 0);
        if (after) next = [{ section: { [after]: null } as PageCursor['section'], index: 0n }];
      }
      const l = section === 'Capsule' ? { Capsule: page[0] } : { [section]: page };
      const reply = { header: f.header, page: { start: BigInt(start), leaves: l, next } } as unknown as ManifestPageReply;
      return { Ok: reply };
    },
    get_blob_chunk: async (hash: Uint8Array, index: bigint) => {
      const b = byHash.get(Buffer.from(hash).toString('hex'))!;
      const c = b.slice(Number(index) * 262_144, (Number(index) + 1) * 262_144);
      if (tamper && b.length === 600_000 && index === 1n) c[5] = (c[5] ?? 0) ^ 1;
      return { Ok: c };
    },
  };
}

/** `manifest verify FILE` (the Rust CLI, built on demand): exit code and output. */
function verify(tar: Uint8Array): { code: number | null; out: string } {
  const built = spawnSync('cargo', ['build', '-q', '-p', 'manifests', '--bin', 'manifest'], { cwd: root, encoding: 'utf8' });
  expect(built.status, built.stderr).toBe(0);
  const file = join(mkdtempSync(join(tmpdir(), 'capsule-')), 'capsule.tar');
  writeFileSync(file, tar);
  const r = spawnSync(join(root, 'target', 'debug', 'manifest'), ['verify', file], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

describe('download my capsule', () => {
  it('writes ustar headers with their checksum', () => {
    const h = tarHeader('manifest.json', 1234n);
    expect(new TextDecoder().decode(h.slice(124, 135))).toBe('00000002322');
    const sum = h.reduce((a, b, i) => a + (i >= 148 && i < 156 ? 32 : b), 0);
    expect(new TextDecoder().decode(h.slice(148, 154))).toBe(sum.toString(8).padStart(6, '0'));
    expect(new TextDecoder().decode(h.slice(257, 262))).toBe('ustar');
  });

  it('writes bigints with every digit', () => {
    expect(toJson({ t: 1_700_000_000_000_000_001n, s: 'x', o: null })).toBe(
      '{\n  "t": 1700000000000000001,\n  "s": "x",\n  "o": null\n}',
    );
  });

  it('writes an archive the CLI verifies, with the manifest root', { timeout: 600_000 }, async () => {
    const progress: bigint[] = [];
    const { parts, root: r } = await writeArchive(fakeCanister(), (p) => progress.push(p.bytesDone));
    expect(r).toBe(fixture().rootHex);
    expect(progress.at(-1)).toBe(601_000n);
    const { code, out } = verify(concat(parts));
    expect(out.trim()).toBe(`verified ${r} (3 blobs, 601000 bytes)`);
    expect(code).toBe(0);
  });

  it('a blob altered on the way is named by the CLI', { timeout: 600_000 }, async () => {
    const { parts } = await writeArchive(fakeCanister(true));
    const { code, out } = verify(concat(parts));
    expect(code).toBe(1);
    expect(out).toMatch(/^blobs\/[0-9a-f]{64}: its content hashes to/m);
    expect(out).toMatch(/^root: /m);
  });
});
