// The personal-canister client: ask the factory for a canister, watch the creation with
// backoff, retry after a failure, and pick the canister that serves the capsule.
import type { Principal } from '@icp-sdk/core/principal';
import {
  FactoryCallError,
  describeError,
  describeFactoryError,
  unwrapFactory,
  variantOf,
} from './errors';
import type {
  BackendService,
  CapsuleService,
  CreationRecord,
  CreationState,
  CreationStateName,
  Progress,
} from './types';

/** What the client needs of the backend: the capsule API and the two factory methods. */
export type FactoryService = CapsuleService &
  Pick<BackendService, 'create_personal_canister' | 'get_creation_status'>;

export interface Backoff {
  /** First delay between polls, and the delay after a poll that saw a change. */
  initialMs: number;
  /** Longest delay between polls. */
  maxMs: number;
  /** Growth of the delay after a poll that saw no change (or failed). */
  factor: number;
  /** Consecutive failed polls (transport errors) before watching gives up. */
  maxErrors: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 8_000, factor: 2, maxErrors: 6 };

export interface ClientConfig {
  /** An actor on the shared backend (either transport). */
  backend: FactoryService;
  /** The backend's canister id. */
  backendId: Principal;
  /** Makes an actor on a personal canister (the same transport as `backend`). */
  personal: (canisterId: Principal) => CapsuleService;
  backoff?: Partial<Backoff>;
  /** Waits `ms` milliseconds; `setTimeout` by default (so fake timers drive it in tests). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** A creation record in the shape the page shows. */
export interface CreationStatus {
  /** The creation's id in the factory (the same across retries). */
  migrationId: bigint;
  state: CreationStateName;
  /** The personal canister, once created (also while failed, for retry or cleanup). */
  canisterId: Principal | null;
  /** Every state entered, oldest first (`at` in nanoseconds since the epoch). */
  timeline: { state: CreationStateName; at: bigint }[];
  progress: Progress;
  /** Bytes copied / bytes to copy, 0..1 (1 once Completed). */
  fraction: number;
  /** Why the creation failed, as a sentence; `null` unless Failed. */
  error: string | null;
  /** The failure's variant name, e.g. `"ImportFailed"`. */
  errorKind: string | null;
  failedIn: CreationStateName | null;
  /**
   * When the current state times out (nanoseconds since the epoch): past it the factory fails
   * the creation with `TimedOut`. `null` in NotStarted, Completed and Failed.
   */
  deadlineAt: bigint | null;
  attempts: number;
  record: CreationRecord;
}

export interface WatchOptions {
  /** Called with the first status and with every status that differs from the previous one. */
  onUpdate?: (status: CreationStatus) => void;
  signal?: AbortSignal;
  backoff?: Partial<Backoff>;
}

/** Which canister serves the capsule, and an actor on it. */
export interface CapsuleTarget {
  actor: CapsuleService;
  servedBy: 'personal' | 'backend';
  canisterId: Principal;
  /** The creation, or `null` when none was asked for. */
  status: CreationStatus | null;
}

export const TERMINAL_STATES: readonly CreationStateName[] = ['Completed', 'Failed'];

export function stateName(s: CreationState): CreationStateName {
  return variantOf(s)[0] as CreationStateName;
}

/** Converts a creation record to a {@link CreationStatus}. */
export function toStatus(record: CreationRecord): CreationStatus {
  const state = stateName(record.state);
  const { bytes_done, bytes_total } = record.progress;
  const fraction =
    state === 'Completed' ? 1 : bytes_total > 0n ? Math.min(1, Number(bytes_done) / Number(bytes_total)) : 0;
  const err = record.error[0];
  const failed = state === 'Failed';
  return {
    migrationId: record.migration_id,
    state,
    canisterId: record.canister_id[0] ?? null,
    timeline: record.timeline.map((t) => ({ state: stateName(t.state), at: t.at })),
    progress: record.progress,
    fraction,
    error: failed ? (err ? describeFactoryError(err) : 'The creation failed for an unknown reason; try again.') : null,
    errorKind: failed && err ? variantOf(err)[0] : null,
    failedIn: record.failed_in[0] ? stateName(record.failed_in[0]) : null,
    deadlineAt: TERMINAL_STATES.includes(state) ? null : (record.deadline_at[0] ?? null),
    attempts: record.attempts,
    record,
  };
}

/**
 * Where a page keeps the byte samples of one attempt's copy (see `ProgressEstimator`), so that
 * its throughput and time-left estimate survive a reload: one key per migration and attempt.
 */
export function progressKey(s: Pick<CreationStatus, 'migrationId' | 'attempts'>): string {
  return `capsule-progress:${s.migrationId}:${s.attempts}`;
}

function changed(a: CreationStatus | null, b: CreationStatus): boolean {
  if (!a) return true;
  const pa = a.progress;
  const pb = b.progress;
  return (
    a.state !== b.state ||
    a.attempts !== b.attempts ||
    a.timeline.length !== b.timeline.length ||
    a.errorKind !== b.errorKind ||
    (a.canisterId?.toText() ?? '') !== (b.canisterId?.toText() ?? '') ||
    (Object.keys(pb) as (keyof Progress)[]).some((k) => pa[k] !== pb[k])
  );
}

/** Transport failures worth polling again for; an `Err` of the factory is not one. */
function isTransient(e: unknown): boolean {
  return !(e instanceof FactoryCallError);
}

export function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class PersonalCanisterClient {
  readonly backoff: Backoff;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(private readonly config: ClientConfig) {
    this.backoff = { ...DEFAULT_BACKOFF, ...config.backoff };
    this.sleep = config.sleep ?? defaultSleep;
  }

  /**
   * Asks the factory for the caller's personal canister; after `Failed` this retries. The
   * factory is idempotent: while a creation is under way, and once it is completed, this
   * returns its current record.
   * Throws a {@link FactoryCallError} (with a sentence as its message) on an `Err`.
   */
  async createPersonalCanister(config: { name?: string; subnetId?: Principal } = {}): Promise<CreationStatus> {
    const r = await this.config.backend.create_personal_canister({
      name: config.name !== undefined ? [config.name] : [],
      subnet_id: config.subnetId ? [config.subnetId] : [],
    });
    return toStatus(unwrapFactory(r));
  }

  /** Retries a failed creation: the factory starts a new attempt (`attempts` grows by one). */
  async retry(config: { name?: string; subnetId?: Principal } = {}): Promise<CreationStatus> {
    return this.createPersonalCanister(config);
  }

  /** The caller's creation, or `null` when none was asked for. */
  async status(): Promise<CreationStatus | null> {
    const r = await this.config.backend.get_creation_status();
    if ('Err' in r && 'NoCreation' in r.Err) return null;
    return toStatus(unwrapFactory(r));
  }

  /**
   * Polls `get_creation_status` until the creation is Completed or Failed, yielding the first
   * status and every one that differs from the previous. The delay starts at
   * `backoff.initialMs`, grows by `backoff.factor` up to `backoff.maxMs` while nothing changes,
   * and drops back to `initialMs` when something does. Transport errors are retried with the
   * same growth, up to `backoff.maxErrors` in a row; an `Err` of the factory is thrown at once.
   */
  async *updates(opts: Omit<WatchOptions, 'onUpdate'> = {}): AsyncGenerator<CreationStatus, CreationStatus> {
    const b = { ...this.backoff, ...opts.backoff };
    let delay = b.initialMs;
    let last: CreationStatus | null = null;
    let errors = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      let s: CreationStatus | null;
      try {
        s = await this.status();
        errors = 0;
      } catch (e) {
        if (!isTransient(e) || ++errors >= b.maxErrors) throw e;
        await this.sleep(delay, opts.signal);
        delay = Math.min(b.maxMs, delay * b.factor);
        continue;
      }
      if (!s) throw new FactoryCallError({ NoCreation: null });
      if (changed(last, s)) {
        last = s;
        delay = b.initialMs;
        yield s;
      } else {
        delay = Math.min(b.maxMs, delay * b.factor);
      }
      if (TERMINAL_STATES.includes(s.state)) return s;
      await this.sleep(delay, opts.signal);
    }
  }

  /** {@link updates} with a callback; resolves with the final (Completed or Failed) status. */
  async watchCreation(opts: WatchOptions = {}): Promise<CreationStatus> {
    const it = this.updates(opts);
    for (;;) {
      const n = await it.next();
      if (n.done) return n.value;
      opts.onUpdate?.(n.value);
    }
  }

  /**
   * Which canister serves the capsule: the personal canister once the creation is Completed,
   * the shared backend otherwise (none asked for, in progress, failed).
   */
  async capsuleTarget(): Promise<CapsuleTarget> {
    const status = await this.status();
    if (status?.state === 'Completed' && status.canisterId) {
      return {
        actor: this.config.personal(status.canisterId),
        servedBy: 'personal',
        canisterId: status.canisterId,
        status,
      };
    }
    return { actor: this.config.backend, servedBy: 'backend', canisterId: this.config.backendId, status };
  }

  /** An actor on the canister that serves the capsule (see {@link capsuleTarget}). */
  async capsuleActor(): Promise<CapsuleService> {
    return (await this.capsuleTarget()).actor;
  }
}

export function createClient(config: ClientConfig): PersonalCanisterClient {
  return new PersonalCanisterClient(config);
}

export { describeError };
