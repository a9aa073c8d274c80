// The admins' client over a fake backend, the candid text of a manifest, the settings form's
// parsing, the top-up amount and the chart's points.
import { Principal } from '@icp-sdk/core/principal';
import { IDL } from '@icp-sdk/core/candid';
import { describe, expect, it } from 'vitest';
import { idlFactory as backendIdl } from '../src/bindings/backend/backend.did';
import { AdminClient, manifestText, rootsOf, sectionsOf, type AdminService } from '../src/client/admin';
import { candidValue, quote } from '../src/client/candid-text';
import { FactoryCallError } from '../src/client/errors';
import type {
  CreationRecord,
  CreationSummary,
  FactoryConfig,
  FactoryError,
  ManifestHeader,
  ManifestPageReply,
  PageCursor,
  ReserveSnapshot,
} from '../src/client/types';
import { ConfigInputError, configType, parseField } from '../src/admin/config';
import { chartPoints, niceCeil } from '../src/admin/chart';
import { parseTCycles } from '../src/admin/reserve';
import { method, sample } from './idl';
import { FakeAdmin } from './fake_admin';

const OWNER = Principal.fromText('2vxsx-fae');
type R<T> = Promise<{ Ok: T } | { Err: FactoryError }>;

function summary(id: number, state: string): CreationSummary {
  return {
    migration_id: BigInt(id),
    owner: OWNER,
    state: { [state]: null } as CreationSummary['state'],
    canister_id: [],
    created_at: 0n,
    updated_at: 0n,
    attempts: 1,
    bytes_done: 0n,
    bytes_total: 0n,
    failed_in: [],
    cycles_consumed: 0n,
  };
}

function header(): ManifestHeader {
  return sample(configTypeOf('ManifestHeader')) as ManifestHeader;
}

/** A type of the backend's IDL, found through a method that carries it. */
function configTypeOf(name: 'ManifestHeader' | 'ManifestPageReply'): IDL.Type {
  const ret = method(backendIdl, 'admin_get_manifest_page').retTypes[0] as IDL.VariantClass;
  const reply = ret._fields.find(([n]) => n === 'Ok')?.[1] as IDL.RecordClass;
  return name === 'ManifestPageReply' ? reply : (reply._fields.find(([n]) => n === 'header')?.[1] as IDL.Type);
}

describe('the admin client', () => {
  it('tells an admin from anyone else', async () => {
    const b = new FakeAdmin();
    expect(await new AdminClient(b).isAdmin()).toBe(true);
    b.admin = false;
    expect(await new AdminClient(b).isAdmin()).toBe(false);
    await expect(new AdminClient(b).counts()).rejects.toThrow('Only an administrator of the service may do this.');
  });

  it('pages creations, and filters by state across the backend pages', async () => {
    const states = ['Failed', 'Completed', 'Completed', 'Failed', 'Importing', 'Failed', 'Completed'];
    const b = new FakeAdmin(states.map((s, i) => summary(i + 1, s)));
    const admin = new AdminClient(b);
    const first = await admin.listCreations({ limit: 3 });
    expect(first.items.map((s) => Number(s.migration_id))).toEqual([1, 2, 3]);
    expect(first.next).toBe(3n);
    const second = await admin.listCreations({ limit: 3, startAfter: first.next });
    expect(second.items.map((s) => Number(s.migration_id))).toEqual([4, 5, 6]);
    const last = await admin.listCreations({ limit: 3, startAfter: second.next });
    expect(last.items.map((s) => Number(s.migration_id))).toEqual([7]);
    expect(last.next).toBeNull();

    const failed = await admin.listCreations({ limit: 2, state: 'Failed' });
    expect(failed.items.map((s) => Number(s.migration_id))).toEqual([1, 4]);
    expect(failed.next).toBe(4n);
    const more = await admin.listCreations({ limit: 2, state: 'Failed', startAfter: failed.next });
    expect(more.items.map((s) => Number(s.migration_id))).toEqual([6]);
    expect(more.next).toBeNull();
    expect(more.scanned).toBe(3);
    expect((await admin.listCreations({ state: 'Verifying' })).items).toEqual([]);

    // By part of a principal: the owner's or the canister's.
    b.creations[4]!.owner = Principal.fromText('ryjl3-tyaaa-aaaaa-aaaba-cai');
    b.creations[5]!.canister_id = [Principal.fromText('rrkah-fqaaa-aaaaa-aaaaq-cai')];
    expect((await admin.listCreations({ principal: ' RYJL3-' })).items.map((s) => Number(s.migration_id))).toEqual([5]);
    expect((await admin.listCreations({ principal: 'rrkah' })).items.map((s) => Number(s.migration_id))).toEqual([6]);
    expect((await admin.listCreations({ principal: 'rrkah', state: 'Completed' })).items).toEqual([]);
  });

  it('reads counts from the running counters and the active set by state', async () => {
    const b = new FakeAdmin();
    b.stats = {
      attempted: 5n,
      succeeded: 2n,
      failed: 3n,
      in_progress: 1n,
      queued: 4n,
      total_cycles_consumed: 9n,
      active_by_state: ['Exporting', 'Creating', 'Installing', 'Importing', 'Verifying'].map((s) => ({
        state: { [s]: null } as CreationSummary['state'],
        count: s === 'Importing' ? 1n : 0n,
      })),
    };
    expect(await new AdminClient(b).counts()).toEqual({
      queued: 4n,
      inProgress: 1n,
      activeByState: [
        { state: 'Exporting', count: 0n },
        { state: 'Creating', count: 0n },
        { state: 'Installing', count: 0n },
        { state: 'Importing', count: 1n },
        { state: 'Verifying', count: 0n },
      ],
      succeeded: 2n,
      failedAttempts: 3n,
      attempted: 5n,
      totalCyclesConsumed: 9n,
    });
  });

  it('follows the reserve history pages to the newest snapshot', async () => {
    const b = new FakeAdmin();
    b.snapshots = [1, 2, 3, 4, 5].map((i) => ({ ...(sample(configTypeOfSnapshot()) as ReserveSnapshot), at: BigInt(i), reserve: BigInt(i * 10) }));
    b.toppedUp = 50n; // the reserve now: the newest snapshot's
    const h = await new AdminClient(b).reserveHistory();
    expect(h.snapshots.map((s) => Number(s.reserve))).toEqual([10, 20, 30, 40, 50]);
    expect(b.calls).toEqual(['history - 500', 'history 2 500', 'history 4 500']);
    expect(h.page?.interval_seconds).toBe(600n);
  });

  it('refuses a top-up of nothing without calling, and turns Errs into sentences', async () => {
    const admin = new AdminClient(new FakeAdmin([summary(1, 'Failed'), summary(2, 'Completed')]));
    const e = await admin.topUp(0n).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FactoryCallError);
    expect((e as Error).message).toBe('That request was refused: a top-up must be more than 0 cycles.');
    expect(await admin.cleanup(1n)).toBe(42n);
    await expect(admin.cleanup(2n)).rejects.toThrow(
      'This cannot be done while the creation is completed (it needs to be any state but Completed).',
    );
    const c = sample(configType()) as FactoryConfig;
    await expect(admin.setConfig({ ...c, max_in_flight: 0 })).rejects.toThrow(
      'The setting max_in_flight was refused: must be 1..=50.',
    );
    expect((await admin.setCreationEnabled(false)).creation_enabled).toBe(false);
  });

  it('reads every manifest page in order and prints them as candid text', async () => {
    const b = new FakeAdmin();
    const h = header();
    const reply = sample(configTypeOf('ManifestPageReply')) as ManifestPageReply;
    const capsulePage: ManifestPageReply = {
      header: h,
      page: { start: 0n, leaves: { Capsule: sampleCapsuleLeaf(reply) }, next: [{ section: { Blobs: null }, index: 0n }] },
    };
    const blobPage: ManifestPageReply = {
      header: h,
      page: { start: 0n, leaves: { Blobs: [{ hash: new Uint8Array(32).fill(0xab), size: 5n, chunk_hashes: [new Uint8Array([1, 2])] }] }, next: [] },
    };
    b.pages = [capsulePage, blobPage];
    const m = await new AdminClient(b).manifest(3n);
    expect(b.calls).toEqual(['page Capsule 0', 'page Blobs 0']);
    expect(m.pages).toHaveLength(2);
    const text = manifestText(m);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.startsWith('(record {') && l.endsWith('})'))).toBe(true);
    expect(lines[1]).toContain(`leaves = variant {Blobs = vec {record {`);
    expect(lines[1]).toContain(`hash = blob "${'\\ab'.repeat(32)}"`);
    expect(lines[1]).toContain('chunk_hashes = vec {blob "\\01\\02"}');
    expect(lines[1]).toContain('next = null');
    expect(lines[0]).toContain('next = opt record {');
    expect(lines[0]).toContain('section = variant {Blobs}');
    expect(sectionsOf(h).map((s) => s.name)).toEqual(['Capsule', 'Connections', 'Memories', 'Blobs']);
  });
});

function configTypeOfSnapshot(): IDL.Type {
  const ret = method(backendIdl, 'admin_get_reserve_history').retTypes[0] as IDL.VariantClass;
  const page = ret._fields.find(([n]) => n === 'Ok')?.[1] as IDL.RecordClass;
  const snaps = page._fields.find(([n]) => n === 'snapshots')?.[1] as IDL.VecClass<unknown>;
  return snaps._type;
}

/** A capsule leaf: the `Capsule` case of the reply's `PageLeaves`. */
function sampleCapsuleLeaf(_reply: ManifestPageReply): Extract<ManifestPageReply['page']['leaves'], { Capsule: unknown }>['Capsule'] {
  const reply = configTypeOf('ManifestPageReply') as IDL.RecordClass;
  const page = reply._fields.find(([n]) => n === 'page')?.[1] as IDL.RecordClass;
  const leaves = page._fields.find(([n]) => n === 'leaves')?.[1] as IDL.VariantClass;
  return sample(leaves._fields.find(([n]) => n === 'Capsule')?.[1] as IDL.Type) as never;
}

describe('the roots of a creation', () => {
  const base = () => {
    const r = sample(method(backendIdl, 'admin_get_creation').retTypes[0]!) as { Ok: CreationRecord };
    const rec = ('Ok' in r ? r.Ok : r) as CreationRecord;
    return { ...rec, manifest: [{ root: new Uint8Array(32).fill(1), memories: 0n, connections: 0n, blobs: 0n, blob_bytes: 0n, chunks: 0n }] as CreationRecord['manifest'], error: [] as CreationRecord['error'] };
  };
  const at = (states: string[]) => states.map((s, i) => ({ state: { [s]: null } as CreationRecord['state'], at: BigInt(i) }));
  const exportRoot = '01'.repeat(32);

  it('are pending until the personal canister reports', () => {
    const r = { ...base(), state: { Importing: null }, timeline: at(['NotStarted', 'Exporting', 'Creating', 'Installing', 'Importing']) } as CreationRecord;
    expect(rootsOf(r)).toEqual({ exportRoot, reportedRoot: null, verdict: 'pending', sections: [] });
  });

  it('match once the creation went on to Verifying', () => {
    const r = { ...base(), state: { Completed: null }, timeline: at(['Importing', 'Verifying', 'Completed']) } as CreationRecord;
    expect(rootsOf(r)).toEqual({ exportRoot, reportedRoot: exportRoot, verdict: 'match', sections: [] });
    // A retry that is importing again has no report of its own yet.
    const retry = { ...r, state: { Importing: null }, timeline: at(['Importing', 'Verifying', 'Failed', 'Importing']) } as CreationRecord;
    expect(rootsOf(retry).verdict).toBe('pending');
  });

  it('show both roots and the sections on a mismatch', () => {
    const r = {
      ...base(),
      state: { Failed: null },
      timeline: at(['Importing', 'Failed']),
      error: [{ RootMismatch: { expected: exportRoot, actual: 'ff'.repeat(32), sections: ['memories'] } }],
    } as CreationRecord;
    expect(rootsOf(r)).toEqual({ exportRoot, reportedRoot: 'ff'.repeat(32), verdict: 'mismatch', sections: ['memories'] });
  });
});

describe('candid text', () => {
  it('escapes texts', () => {
    expect(quote('a "b" \\ c\nd\te\u0001 é')).toBe('"a \\"b\\" \\\\ c\\nd\\te\\u{1} é"');
  });

  it('prints options, variants, principals, numbers, records and keyword field names', () => {
    const t = IDL.Record({
      n: IDL.Nat64,
      o: IDL.Opt(IDL.Text),
      p: IDL.Principal,
      v: IDL.Variant({ A: IDL.Null, B: IDL.Nat32 }),
      type: IDL.Bool,
      xs: IDL.Vec(IDL.Nat16),
    });
    expect(candidValue(t, { n: 12n, o: [], p: OWNER, v: { B: 7 }, type: true, xs: [1, 2] })).toBe(
      // Fields in candid's order (by field id); `type` is a keyword, so quoted.
      'record {n = 12; o = null; p = principal "2vxsx-fae"; v = variant {B = 7}; xs = vec {1; 2}; "type" = true}',
    );
    expect(candidValue(IDL.Opt(IDL.Variant({ A: IDL.Null })), [{ A: null }])).toBe('opt variant {A}');
  });
});

describe('the settings form', () => {
  const t = configType();
  const field = (name: string) => t._fields.find(([n]) => n === name)?.[1] as IDL.Type;

  it('reads numbers, empty options, booleans and principals by their candid type', () => {
    expect(parseField('max_in_flight', field('max_in_flight'), ' 12 ')).toBe(12);
    expect(parseField('reserve_threshold', field('reserve_threshold'), '1_000_000')).toBe(1_000_000n);
    expect(parseField('reserve_history_interval_seconds', field('reserve_history_interval_seconds'), '')).toEqual([]);
    expect(parseField('reserve_history_interval_seconds', field('reserve_history_interval_seconds'), '60')).toEqual([60n]);
    expect(parseField('creation_enabled', field('creation_enabled'), '', true)).toBe(true);
    expect(parseField('notification_canister', field('notification_canister'), 'aaaaa-aa')).toEqual([Principal.fromText('aaaaa-aa')]);
  });

  it('refuses what its type cannot hold, with a sentence naming the setting', () => {
    const cases: [string, string, string][] = [
      ['max_in_flight', 'ten', 'The setting max_in_flight must be a whole number of 0 or more.'],
      ['max_in_flight', '-1', 'The setting max_in_flight must be a whole number of 0 or more.'],
      ['max_in_flight', '4294967296', 'The setting max_in_flight must be at most 4294967295.'],
      ['notification_canister', 'not a principal', 'The setting notification_canister must be a principal (e.g. aaaaa-aa).'],
    ];
    for (const [name, text, message] of cases) {
      const e = (() => {
        try {
          parseField(name, field(name), text);
        } catch (x) {
          return x;
        }
      })();
      expect(e).toBeInstanceOf(ConfigInputError);
      expect((e as Error).message).toBe(message);
    }
  });
});

describe('the reserve view', () => {
  it('reads a top-up in T cycles', () => {
    expect(parseTCycles('10')).toBe(10_000_000_000_000n);
    expect(parseTCycles(' 2.5 ')).toBe(2_500_000_000_000n);
    expect(parseTCycles('0.000000000001')).toBe(1n);
    for (const bad of ['', 'ten', '-1', '1e3', '0', '1.0000000000001'])
      expect(() => parseTCycles(bad), bad).toThrow(/^The amount must be/);
  });

  it('charts every snapshot, and the current reserve only when it differs from the newest', () => {
    const snap = (at: number, reserve: number) => ({ ...(sample(configTypeOfSnapshot()) as ReserveSnapshot), at: BigInt(at) * 1_000_000n, reserve: BigInt(reserve) });
    expect(chartPoints([], 5n, 99)).toEqual([{ t: 99, reserve: 5 }]);
    expect(chartPoints([snap(1, 10), snap(2, 20)], 20n, 99)).toEqual([
      { t: 1, reserve: 10 },
      { t: 2, reserve: 20 },
    ]);
    expect(chartPoints([snap(1, 10)], 30n, 99)).toEqual([
      { t: 1, reserve: 10 },
      { t: 1, reserve: 30 },
    ]);
    expect([0, 0.7, 1, 1.2, 3, 7, 120, 4.9e14].map(niceCeil)).toEqual([1, 1, 1, 2, 5, 10, 200, 5e14]);
  });
});
