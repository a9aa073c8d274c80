import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  PersonalCanisterClient,
  DEFAULT_BACKOFF,
  toStatus,
  type ClientConfig,
  type CreationStatus,
} from '../src/client/creation';
import { FactoryCallError, RejectError } from '../src/client/errors';
import { CREATION_STATES, type CapsuleService, type FactoryError } from '../src/client/types';
import {
  BACKEND_ID,
  DEADLINE_NS,
  FakeBackend,
  FakeCapsule,
  PERSONAL_ID,
  TOTAL_BYTES,
  happyScript,
  type Step,
} from './fake';

const noSleep = async () => {};

function setup(scripts?: Step[][], extra: Partial<ClientConfig> = {}) {
  const backend = new FakeBackend(scripts);
  const personals: FakeCapsule[] = [];
  const client = new PersonalCanisterClient({
    backend,
    backendId: BACKEND_ID,
    personal: (id) => {
      const p = new FakeCapsule(id, 'Personal capsule');
      personals.push(p);
      return p;
    },
    sleep: noSleep,
    ...extra,
  });
  return { backend, client, personals };
}

function failedAt(state: Step['state'], error: Step['error']): Step[] {
  const steps: Step[] = [];
  for (const s of happyScript()) {
    if (s.state === state) break;
    steps.push(s);
  }
  return [...steps, { state, bytes: state === 'Importing' ? 262_144n : 0n }, { state: 'Failed', bytes: 262_144n, error }];
}

afterEach(() => {
  vi.useRealTimers();
});

describe('createPersonalCanister', () => {
  it('asks the factory once and returns the NotStarted record', async () => {
    const { backend, client } = setup();
    const s = await client.createPersonalCanister({ name: 'mine' });
    expect(backend.creates).toBe(1);
    expect(s.state).toBe('NotStarted');
    expect(s.attempts).toBe(1);
    expect(s.canisterId).toBeNull();
    expect(s.error).toBeNull();
  });

  it('passes the config as candid opts', async () => {
    const { backend, client } = setup();
    const spy = vi.spyOn(backend, 'create_personal_canister');
    await client.createPersonalCanister({ name: 'mine', subnetId: BACKEND_ID });
    await client.createPersonalCanister();
    expect(spy.mock.calls[0]?.[0]).toEqual({ name: ['mine'], subnet_id: [BACKEND_ID] });
    expect(spy.mock.calls[1]?.[0]).toEqual({ name: [], subnet_id: [] });
  });

  it('throws the factory error as a sentence', async () => {
    const { backend, client } = setup();
    backend.createError = { InsufficientCycles: { required: 2_000_000_000_000n, available: 100_000_000_000n } };
    const e = await client.createPersonalCanister().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FactoryCallError);
    expect((e as FactoryCallError).kind).toBe('InsufficientCycles');
    expect((e as Error).message).toMatch(/^The service is out of funds for new canisters right now .*try again later\.$/);
  });

  it('asking again after Completed returns the completed record, in one call', async () => {
    const { backend, client } = setup();
    await client.createPersonalCanister();
    await client.watchCreation();
    const polls = backend.polls;
    const again = await client.createPersonalCanister();
    expect(again.state).toBe('Completed');
    expect(again.canisterId?.toText()).toBe(PERSONAL_ID.toText());
    expect(again.attempts).toBe(1);
    expect(again.error).toBeNull();
    // The factory answers with the record itself: no status round trip follows.
    expect(backend.creates).toBe(2);
    expect(backend.polls).toBe(polls);
  });
});

describe('watchCreation', () => {
  it('reports every state in order, with byte progress, until Completed', async () => {
    const { client } = setup();
    await client.createPersonalCanister();
    const seen: CreationStatus[] = [];
    const final = await client.watchCreation({ onUpdate: (s) => seen.push(s) });

    expect(final.state).toBe('Completed');
    const states = seen.map((s) => s.state).filter((s, i, a) => a[i - 1] !== s);
    expect(states).toEqual(CREATION_STATES.slice(1));
    expect(final.timeline.map((t) => t.state)).toEqual([...CREATION_STATES]);
    const importing = seen.filter((s) => s.state === 'Importing').map((s) => s.progress.bytes_done);
    expect(importing).toEqual([0n, 262_144n, 524_288n, TOTAL_BYTES]);
    const fractions = seen.map((s) => s.fraction);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    expect(final.fraction).toBe(1);
    expect(final.progress.bytes_total).toBe(TOTAL_BYTES);
    expect(final.canisterId?.toText()).toBe(PERSONAL_ID.toText());
    expect(final.error).toBeNull();
  });

  it('is also an async iterator of the updates', async () => {
    const { client } = setup();
    await client.createPersonalCanister();
    const states: string[] = [];
    for await (const s of client.updates()) states.push(s.state);
    expect(states[0]).toBe('Exporting');
    expect(states[states.length - 1]).toBe('Completed');
  });

  it('reports each status once: polls that see no change report nothing', async () => {
    const script: Step[] = [{ state: 'Exporting' }, { state: 'Creating' }, { state: 'Completed' }];
    const { backend, client } = setup([script]);
    await client.createPersonalCanister();
    // Between steps, insert polls that change nothing.
    const real = backend.get_creation_status.bind(backend);
    let n = 0;
    backend.get_creation_status = async () => (n++ % 3 === 0 ? real() : { Ok: structuredCloneSafe(backend) });
    const seen: string[] = [];
    await client.watchCreation({ onUpdate: (s) => seen.push(s.state) });
    expect(seen).toEqual(['Exporting', 'Creating', 'Completed']);
    expect(backend.polls).toBe(3);
    expect(n).toBe(7);
  });

  for (const [state, error, kind] of [
    ['Exporting', { ExportFailed: { reason: 'capsule too large' } }, 'ExportFailed'],
    ['Creating', { InsufficientCycles: { required: 3n, available: 1n } }, 'InsufficientCycles'],
    ['Installing', { CallFailed: { code: 5, step: 'install_code', message: 'trapped' } }, 'CallFailed'],
    ['Importing', { ImportFailed: { reason: 'export_chunks rejected 20 times' } }, 'ImportFailed'],
    ['Verifying', { RootMismatch: { actual: 'aa', expected: 'bb', sections: ['memories'] } }, 'RootMismatch'],
    ['Importing', { TimedOut: { seconds: 7200n, state: { Importing: null } } }, 'TimedOut'],
    ['Installing', { UntrustedReply: { step: 'api_version', reason: 'not a nat32' } }, 'UntrustedReply'],
    ['Exporting', { CancelledByAdmin: { state: { Exporting: null } } }, 'CancelledByAdmin'],
    ['Creating', { CreateOutcomeUnknown: null }, 'CreateOutcomeUnknown'],
  ] as Array<[Step['state'], FactoryError, string]>) {
    it(`stops at Failed (failed while ${state}) with the reason as a sentence`, async () => {
      const { client } = setup([failedAt(state, error)]);
      await client.createPersonalCanister();
      const seen: string[] = [];
      const final = await client.watchCreation({ onUpdate: (s) => seen.push(s.state) });
      expect(final.state).toBe('Failed');
      expect(final.failedIn).toBe(state);
      expect(final.errorKind).toBe(kind);
      expect(final.error).toMatch(/[A-Z].*\.$/);
      expect(final.error).not.toContain(kind);
      expect(seen[seen.length - 1]).toBe('Failed');
      expect(seen).toContain(state);
      expect(final.timeline.map((t) => t.state).slice(-2)).toEqual([state, 'Failed']);
    });
  }

  it('shows the deadline of every running state, and none once the creation ended', async () => {
    const { client } = setup();
    await client.createPersonalCanister();
    const seen: CreationStatus[] = [];
    const final = await client.watchCreation({ onUpdate: (s) => seen.push(s) });
    for (const s of seen.filter((x) => x.state !== 'Completed')) {
      const entered = s.timeline[s.timeline.length - 1]?.at ?? 0n;
      expect(s.deadlineAt, s.state).toBe(entered + DEADLINE_NS);
    }
    expect(final.deadlineAt).toBeNull();
    expect(final.record.created_canisters).toEqual([[PERSONAL_ID]]);
  });

  it('a timed-out creation reads as a sentence, has no deadline, and can be retried', async () => {
    const { client } = setup([
      failedAt('Importing', { TimedOut: { seconds: 3600n, state: { Importing: null } } }),
      happyScript(),
    ]);
    await client.createPersonalCanister();
    const failed = await client.watchCreation();
    expect(failed.errorKind).toBe('TimedOut');
    expect(failed.error).toBe(
      'The creation took longer than 3600 s while copying your data and was stopped; ask again to retry.',
    );
    expect(failed.deadlineAt).toBeNull();
    const retried = await client.retry();
    expect(retried.attempts).toBe(2);
    expect(retried.deadlineAt).toBeNull();
    expect((await client.watchCreation()).state).toBe('Completed');
  });

  it('retries after Failed: a new attempt goes through every state to Completed', async () => {
    const { backend, client } = setup([
      failedAt('Importing', { ImportFailed: { reason: 'export_chunks rejected', cause: [] } }),
      happyScript(),
    ]);
    await client.createPersonalCanister();
    const first = await client.watchCreation();
    expect(first.state).toBe('Failed');
    expect(first.canisterId?.toText()).toBe(PERSONAL_ID.toText());

    const retried = await client.retry();
    expect(backend.creates).toBe(2);
    expect(retried.state).toBe('NotStarted');
    expect(retried.attempts).toBe(2);
    expect(retried.error).toBeNull();

    const seen: string[] = [];
    const final = await client.watchCreation({ onUpdate: (s) => seen.push(s.state) });
    expect(final.state).toBe('Completed');
    expect(final.attempts).toBe(2);
    expect(seen.filter((s, i, a) => a[i - 1] !== s)).toEqual(CREATION_STATES.slice(1));
  });

  it('retries twice when the second attempt fails too', async () => {
    const { client } = setup([
      failedAt('Creating', { InsufficientCycles: { required: 3n, available: 1n } }),
      failedAt('Verifying', { HandoffUnconfirmed: { controllers: [BACKEND_ID] } }),
      happyScript(),
    ]);
    await client.createPersonalCanister();
    const kinds: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      if (i > 0) await client.retry();
      const s = await client.watchCreation();
      kinds.push(s.state === 'Failed' ? s.errorKind : s.state);
    }
    expect(kinds).toEqual(['InsufficientCycles', 'HandoffUnconfirmed', 'Completed']);
  });

  it('throws NoCreation when there is nothing to watch', async () => {
    const { client } = setup();
    expect(await client.status()).toBeNull();
    const e = await client.watchCreation().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(FactoryCallError);
    expect((e as Error).message).toBe('You have not asked for a personal canister yet.');
  });

  it('polls through transient transport errors', async () => {
    const { backend, client } = setup();
    await client.createPersonalCanister();
    backend.pollErrors = [new RejectError(2, 'IC0504', 'busy', 'get_creation_status'), new TypeError('fetch failed')];
    const final = await client.watchCreation();
    expect(final.state).toBe('Completed');
  });

  it(`gives up after ${DEFAULT_BACKOFF.maxErrors} transport errors in a row`, async () => {
    const { backend, client } = setup();
    await client.createPersonalCanister();
    const reject = new RejectError(3, 'IC0301', 'canister not found', 'get_creation_status');
    backend.pollErrors = Array.from({ length: DEFAULT_BACKOFF.maxErrors }, () => reject);
    await expect(client.watchCreation()).rejects.toBe(reject);
    expect(backend.polls).toBe(DEFAULT_BACKOFF.maxErrors);
  });

  it('throws a factory Err at once instead of polling on', async () => {
    const { backend, client } = setup();
    await client.createPersonalCanister();
    backend.get_creation_status = async () => {
      backend.polls++;
      return { Err: { Anonymous: null } };
    };
    await expect(client.watchCreation()).rejects.toBeInstanceOf(FactoryCallError);
    expect(backend.polls).toBe(1);
  });

  it('stops when aborted', async () => {
    const { backend, client } = setup([[{ state: 'Exporting' }]], { sleep: undefined });
    vi.useFakeTimers();
    await client.createPersonalCanister();
    const ac = new AbortController();
    const p = client.watchCreation({ signal: ac.signal });
    const caught = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(2_000);
    const polls = backend.polls;
    ac.abort(new Error('left the page'));
    expect(((await caught) as Error).message).toBe('left the page');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(backend.polls).toBe(polls);
  });
});

/** The backend's current record without advancing its script. */
function structuredCloneSafe(b: FakeBackend) {
  const r = b.record;
  if (!r) throw new Error('no record');
  return { ...r, timeline: [...r.timeline], progress: { ...r.progress } };
}

/** The times (`Date.now()`) at which `backend` is polled for the creation's status, from now on. */
function recordPollTimes(backend: FakeBackend): number[] {
  const times: number[] = [];
  const real = backend.get_creation_status.bind(backend);
  backend.get_creation_status = () => {
    times.push(Date.now());
    return real();
  };
  return times;
}

describe('backoff (fake timers)', () => {
  it('doubles the delay while nothing changes, caps it, and resets it on a change', async () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const script: Step[] = [{ state: 'Exporting' }];
    const { backend, client } = setup([script], { sleep: undefined });
    const times = recordPollTimes(backend);
    await client.createPersonalCanister();
    const done = client.watchCreation();

    await vi.advanceTimersByTimeAsync(23_500);
    // poll 1 at 0 (Exporting: change → 500), then no change: 1000, 2000, 4000, 8000, 8000 (cap)
    expect(times).toEqual([0, 500, 1_500, 3_500, 7_500, 15_500, 23_500]);

    script.push({ state: 'Creating' }, { state: 'Completed' });
    await vi.advanceTimersByTimeAsync(8_000); // the poll at 31_500 sees Creating
    await vi.advanceTimersByTimeAsync(500); // reset to 500: the poll at 32_000 sees Completed
    expect(times.slice(7)).toEqual([31_500, 32_000]);
    expect((await done).state).toBe('Completed');
  });

  it('backs off the same way after transport errors', async () => {
    vi.useFakeTimers();
    vi.setSystemTime(0);
    const { backend, client } = setup([[{ state: 'Completed' }]], {
      sleep: undefined,
      backoff: { initialMs: 100, factor: 3, maxMs: 1_000, maxErrors: 10 },
    });
    const times = recordPollTimes(backend);
    await client.createPersonalCanister();
    backend.pollErrors = [1, 2, 3, 4].map(() => new TypeError('fetch failed'));
    const done = client.watchCreation();
    await vi.advanceTimersByTimeAsync(10_000);
    expect((await done).state).toBe('Completed');
    // errors at 0, 100, 400, 1300 (delays 100, 300, 900, then capped 1000)
    expect(times).toEqual([0, 100, 400, 1_300, 2_300]);
  });

  it('uses the documented defaults', () => {
    expect(DEFAULT_BACKOFF).toEqual({ initialMs: 500, maxMs: 8_000, factor: 2, maxErrors: 6 });
  });
});

describe('capsuleActor', () => {
  async function served(client: PersonalCanisterClient) {
    const t = await client.capsuleTarget();
    const r = await t.actor.get_capsule();
    return { servedBy: t.servedBy, id: t.canisterId.toText(), name: 'Ok' in r ? r.Ok.name : null, state: t.status?.state };
  }

  it('is the backend when no creation was asked for', async () => {
    const { client, backend } = setup();
    expect(await client.capsuleActor()).toBe(backend);
    expect(await served(client)).toEqual({
      servedBy: 'backend',
      id: BACKEND_ID.toText(),
      name: 'Shared capsule',
      state: undefined,
    });
  });

  it('is the backend in every state before Completed, and after Failed', async () => {
    const { client } = setup([failedAt('Verifying', { RootMismatch: { actual: 'a', expected: 'b', sections: [] } })]);
    await client.createPersonalCanister();
    const seen = new Set<string>();
    for (;;) {
      const t = await served(client);
      expect(t.servedBy).toBe('backend');
      expect(t.name).toBe('Shared capsule');
      seen.add(t.state ?? '');
      if (t.state === 'Failed') break;
    }
    expect([...seen]).toEqual(['Exporting', 'Creating', 'Installing', 'Importing', 'Verifying', 'Failed']);
  });

  it('is the personal canister once Completed', async () => {
    const { client, personals } = setup();
    await client.createPersonalCanister();
    await client.watchCreation();
    expect(await served(client)).toEqual({
      servedBy: 'personal',
      id: PERSONAL_ID.toText(),
      name: 'Personal capsule',
      state: 'Completed',
    });
    const actor: CapsuleService = await client.capsuleActor();
    expect(actor).toBe(personals[1]);
    expect(personals.map((p) => p.canisterId.toText())).toEqual([PERSONAL_ID.toText(), PERSONAL_ID.toText()]);
  });

  it('switches from the backend to the personal canister after a failed attempt is retried', async () => {
    const { client } = setup([failedAt('Importing', { ImportFailed: { reason: 'x', cause: [] } }), happyScript()]);
    await client.createPersonalCanister();
    await client.watchCreation();
    expect((await served(client)).servedBy).toBe('backend');
    await client.retry();
    await client.watchCreation();
    expect((await served(client)).servedBy).toBe('personal');
  });
});

describe('toStatus', () => {
  it('gives a fraction of 0 when nothing is known yet, and a sentence for a Failed record without error', () => {
    const b = new FakeBackend();
    return b.create_personal_canister().then((r) => {
      if (!('Ok' in r)) throw new Error('unexpected');
      const rec = { ...r.Ok, progress: { ...r.Ok.progress, bytes_total: 0n } };
      expect(toStatus(rec).fraction).toBe(0);
      const failed = toStatus({ ...rec, state: { Failed: null } });
      expect(failed.error).toBe('The creation failed for an unknown reason; try again.');
      expect(toStatus({ ...rec, state: { Importing: null }, deadline_at: [42n] }).deadlineAt).toBe(42n);
      expect(toStatus({ ...rec, state: { Failed: null }, deadline_at: [42n] }).deadlineAt).toBeNull();
      expect(toStatus(rec).deadlineAt).toBeNull();
    });
  });
});
