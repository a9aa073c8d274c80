// Errors from the canisters, turned into sentences a person understands.
//
// Each table below has one entry per candid variant; the compiler rejects a table that misses
// a variant of the generated type, and a unit test walks the variants of the generated IDL.
import { Principal } from '@icp-sdk/core/principal';
import type { BlobError, CapsuleError, CreationState, FactoryError } from './types';

/** The variant names of a candid variant type. */
export type VariantName<V> = V extends unknown ? keyof V & string : never;
/** The payload of variant `K` of `V`. */
export type VariantPayload<V, K extends string> = V extends Record<K, infer P> ? P : never;
type Messages<V> = { [K in VariantName<V>]: (payload: VariantPayload<V, K>) => string };

/** The variant's name and payload. */
export function variantOf<V extends object>(v: V): [VariantName<V>, unknown] {
  const keys = Object.keys(v);
  if (keys.length !== 1) throw new TypeError(`not a candid variant: ${JSON.stringify(Object.keys(v))}`);
  const k = keys[0] as VariantName<V>;
  return [k, (v as Record<string, unknown>)[k]];
}

/** `1_234_567` bytes → `"1.2 MB"`. */
export function formatBytes(n: bigint | number): string {
  const v = Number(n);
  if (v < 1000) return `${v} byte${v === 1 ? '' : 's'}`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let x = v;
  let u = -1;
  while (x >= 1000 && u < units.length - 1) {
    x /= 1000;
    u += 1;
  }
  return `${x.toFixed(x < 10 ? 1 : 0)} ${units[u]}`;
}

/** Cycles in trillions (`T`), the unit people see on the IC. */
export function formatCycles(n: bigint | number): string {
  const t = Number(n) / 1e12;
  return `${t >= 100 ? t.toFixed(0) : t >= 1 ? t.toFixed(2) : t.toPrecision(2)} T cycles`;
}

function principalText(p: unknown): string {
  if (p instanceof Principal) return p.toText();
  if (p && typeof (p as { toText?: unknown }).toText === 'function') return (p as Principal).toText();
  return String(p);
}

function short(hex: string): string {
  return hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-8)}` : hex;
}

const STATE_WORDS: Record<string, string> = {
  NotStarted: 'waiting to start',
  Exporting: 'preparing your data',
  Creating: 'creating the canister',
  Installing: 'installing the canister',
  Importing: 'copying your data',
  Verifying: 'verifying the copy',
  Completed: 'completed',
  Failed: 'failed',
};

/** A creation state in words, e.g. `Importing` → `"copying your data"`. */
export function describeState(state: CreationState | string): string {
  const name = typeof state === 'string' ? state : variantOf(state)[0];
  return STATE_WORDS[name] ?? name;
}

const factoryMessages: Messages<FactoryError> = {
  CallFailed: ({ step, code, message }) =>
    `The service's call to ${stepWords(step)} failed (reject code ${code}: ${message}). Your data is unchanged; try again.`,
  CallNotEnqueued: ({ step }) =>
    `The service could not send its call to ${stepWords(step)} (its queue was full). Your data is unchanged; try again.`,
  CallUnaffordable: ({ step }) =>
    `The service lacked the cycles to make its call to ${stepWords(step)}. Your data is unchanged; try again later.`,
  ReplyUndecodable: ({ step, reason }) =>
    `The system's answer to ${stepWords(step)} could not be read (${reason}). Your data is unchanged; try again later.`,
  ExportManifestMissing: () =>
    'The service lost track of the data prepared for your move. Your data is unchanged; try again.',
  InstallArgUnencodable: ({ reason }) =>
    `The service could not prepare the new canister's settings (${reason}); please report it, then try again later.`,
  NoCreation: () => 'You have not asked for a personal canister yet.',
  Anonymous: () => 'You need to sign in first: anonymous users cannot own a personal canister.',
  NotController: () => 'Only a controller of the service may do this.',
  ExportFailed: ({ reason }) =>
    `Your data could not be prepared for the move (${reason}). Nothing was changed; try again.`,
  RootMismatch: ({ sections }) =>
    `The copy in your new canister did not match your data${
      sections.length ? ` (differences in ${sections.join(', ')})` : ''
    }, so the move was stopped. Your original data is unchanged; try again.`,
  HandoffUnconfirmed: () =>
    'Your data was copied and verified, but handing control of the canister to you could not be confirmed yet. Try again to finish the handoff.',
  ApiVersionMismatch: ({ actual, expected }) =>
    `The new canister runs a different version of the capsule software (version ${actual}, expected ${expected}). The service needs an update; try again later.`,
  InsufficientCycles: ({ required, available }) =>
    `The service is out of funds for new canisters right now (needs ${formatCycles(required)}, has ${formatCycles(
      available,
    )}); try again later.`,
  ModuleHashMismatch: () =>
    'The software installed in the new canister is not the expected one, so the move was stopped for your safety. Your data is unchanged; try again later.',
  NotAdmin: () => 'Only an administrator of the service may do this.',
  NoCapsule: () => 'You have no capsule to move yet. Create your capsule first.',
  ImportFailed: ({ reason }) =>
    `Copying your data into the new canister failed (${reason}). Your original data is unchanged; try again.`,
  CreationDisabled: () => 'Creating personal canisters is switched off for now; try again later.',
  CleanupFailed: ({ reason }) => `The failed attempt could not be cleaned up (${reason}); try again later.`,
  UnknownMigration: ({ migration_id }) => `The service has no record of move number ${migration_id}.`,
  InvalidState: ({ state, expected }) =>
    `This cannot be done while the creation is ${describeState(state)} (it needs to be ${expected}).`,
  DailyLimitReached: ({ limit }) =>
    `The service has reached its limit of ${limit} creation attempts for today; try again tomorrow.`,
  OwnerDailyLimitReached: ({ limit }) =>
    `You have made ${limit} attempts today, the most one person may; try again tomorrow.`,
  DailyCycleBudgetReached: ({ budget, spent, required }) =>
    `New canisters have used ${formatCycles(spent)} of today's ${formatCycles(
      budget,
    )} budget and yours needs ${formatCycles(required)}; your data is unchanged, try again tomorrow.`,
  TimedOut: ({ seconds, state }) =>
    `The creation took longer than ${seconds} s while ${describeState(state)} and was stopped; ask again to retry.`,
  CleanupInProgress: ({ migration_id }) =>
    `The service is still cleaning up after move number ${migration_id}; wait for it to finish, then try again.`,
  CancelledByAdmin: ({ state }) =>
    `An administrator stopped this creation while it was ${describeState(
      state,
    )}. Your data is unchanged; try again later.`,
  UntrustedReply: ({ step, reason }) =>
    `The new canister's answer to ${stepWords(
      step,
    )} could not be read (${reason}), so the move was stopped for your safety. Your data is unchanged; try again.`,
  CreateOutcomeUnknown: () =>
    'The service was updated while it was creating your canister, so it cannot tell whether the canister was made. Your data is unchanged; try again.',
  Internal: ({ detail }) =>
    `The service ran into an unexpected problem (${detail}); please report it, then try again later.`,
  InvalidConfig: ({ field, reason }) => `The setting ${field} was refused: ${reason}.`,
  InvalidArgument: ({ reason }) => `That request was refused: ${reason}.`,
  SponsorLimitReached: ({ limit, sponsored, requested }) =>
    `Sponsoring ${formatCycles(requested)} more would take this person's sponsored top-ups past the limit of ${formatCycles(
      limit,
    )} (${formatCycles(sponsored)} so far).`,
  DepositFailed: ({ canister_id, message }) =>
    `Sending cycles to canister ${principalText(canister_id)} failed (${message}); the reserve got them back.`,
};

function stepWords(step: string): string {
  const s = step.replace(/_/g, ' ').trim();
  return s || 'another canister';
}

const blobMessages: Messages<BlobError> = {
  IncompleteUpload: ({ missing }) =>
    `The file upload is incomplete: ${missing} piece${missing === 1n ? ' is' : 's are'} missing. Upload the file again.`,
  ChunkIndexOutOfRange: ({ index, chunk_count }) =>
    `Piece ${index} of the file does not exist (the file has ${chunk_count} pieces).`,
  UnknownBlob: () => 'That file is not stored here.',
  ChunkPositionMismatch: ({ index }) => `Piece ${index} of the file list is in the wrong position.`,
  ChunkSizeMismatch: ({ index, actual, expected }) =>
    `Piece ${index} of the file has the wrong size (${formatBytes(actual)}, expected ${formatBytes(expected)}).`,
  RangeTooLarge: ({ len, max }) =>
    `Too much of the file was asked for at once (${formatBytes(len)}; at most ${formatBytes(max)}).`,
  ChunkCountMismatch: ({ actual, expected }) =>
    `The file's piece list has ${actual} pieces but its size needs ${expected}.`,
  TooManyUploadsForOwner: ({ max }) =>
    `You already have ${max} uploads in progress; finish or cancel one before starting another.`,
  UnknownUpload: () => 'That upload is no longer open (it finished, was cancelled or expired). Start it again.',
  NotUploadOwner: () => 'That upload belongs to someone else.',
  BlobTooLarge: ({ size, max }) => `The file is too large (${formatBytes(size)}; at most ${formatBytes(max)}).`,
  OwnerTooLong: () => 'The owner id of this upload is too long.',
  ChunkListMismatch: () => "The file's piece list does not match the file's fingerprint.",
  ChunkHashMismatch: ({ index }) =>
    `Piece ${index} of the file arrived damaged (its fingerprint does not match). Upload the file again.`,
  NotAnImport: () => 'This upload is a plain upload, not part of a move.',
  OutOfStableMemory: () => 'The canister has no room left to store the file.',
  RangeOutOfBounds: ({ offset, len, size }) =>
    `The part asked for (${formatBytes(len)} at ${offset}) lies outside the file (${formatBytes(size)}).`,
  BlobHashMismatch: ({ expected, actual }) =>
    `The uploaded file is not the expected one (fingerprint ${short(actual)}, expected ${short(expected)}). Upload it again.`,
  TooManyUploads: () => 'Too many uploads are in progress on the service right now; try again in a moment.',
};

const capsuleMessages: Messages<CapsuleError> = {
  ConnectionNotFound: ({ peer }) => `You have no connection with ${principalText(peer)}.`,
  Anonymous: () => 'You need to sign in first: anonymous users have no capsule.',
  FieldTooLong: ({ field, len, max }) =>
    `The ${field.replace(/_/g, ' ')} is too long (${len} characters; at most ${max}).`,
  Blob: (e) => describeBlobError(e),
  ConnectionExists: ({ peer }) => `You are already connected with ${principalText(peer)}.`,
  InvalidPageLimit: ({ limit, max }) => `Asked for ${limit} items at once; at most ${max} are allowed.`,
  CapsuleNotFound: () => 'You have no capsule yet. Create your capsule first.',
  LimitReached: ({ what, max }) => `You have reached the limit of ${max} ${what.replace(/_/g, ' ')}.`,
  BlobNotInCapsule: () => 'That file is not part of your capsule. Upload it first.',
  UnknownUpload: () => 'That upload is no longer open (it finished, was cancelled or expired). Start it again.',
  ImportRejected: ({ reason }) => `The data being moved was refused (${reason}).`,
  ManifestNotVerified: ({ phase }) =>
    `This canister's copy is not verified yet (its import is at the ${phase.toLowerCase()} step); ask again once it is done.`,
  CursorOutOfRange: () => 'That part of the manifest does not exist: the manifest ends before it.',
  NotController: () => 'Only a controller of this canister may do this.',
  CyclesNotReturned: ({ canister_id, reason }) =>
    `The cycles could not be sent to ${principalText(canister_id)} (${reason}); what came back stays here.`,
  BlobSizeMismatch: ({ declared, actual }) =>
    `The file's size does not match (declared ${formatBytes(declared)}, stored ${formatBytes(actual)}).`,
  CapsuleMoved: ({ canister_id }) =>
    `Your capsule has moved to your personal canister ${principalText(canister_id)}; use it there.`,
  NotOwner: () => 'This capsule belongs to someone else.',
  SelfConnection: () => 'You cannot connect with yourself.',
  MemoryNotFound: ({ id }) => `There is no memory number ${id}.`,
  CapsuleFrozen: ({ reason }) =>
    `Your capsule is read-only for now (${reason}); changes are possible again once that is over.`,
  CapsuleExists: () => 'You already have a capsule.',
};

function lookup<V extends object>(table: Messages<V>, v: V): string {
  const [name, payload] = variantOf(v);
  const f = (table as Record<string, ((p: unknown) => string) | undefined>)[name];
  if (!f) return `The service reported an error this page does not know (${name}).`;
  return f(payload);
}

export function describeFactoryError(e: FactoryError): string {
  return lookup(factoryMessages, e);
}
export function describeBlobError(e: BlobError): string {
  return lookup(blobMessages, e);
}
export function describeCapsuleError(e: CapsuleError): string {
  return lookup(capsuleMessages, e);
}

const REJECT_WORDS: Record<number, string> = {
  1: 'The Internet Computer had a fatal error handling the call',
  2: 'The Internet Computer is busy or the call timed out',
  3: 'The canister could not be found or is not running',
  4: 'The canister refused the call',
  5: 'The canister ran into an error',
  6: 'The call timed out before an answer came back',
};

/** A call that did not reach the method's reply: rejected by the system or the canister. */
export class RejectError extends Error {
  override readonly name = 'RejectError';
  constructor(
    readonly rejectCode: number,
    readonly errorCode: string,
    readonly detail: string,
    readonly method: string,
  ) {
    super(`${REJECT_WORDS[rejectCode] ?? `The call was rejected (code ${rejectCode})`}: ${detail || errorCode}`);
  }
}

/** An `Err` the factory returned. `message` is the sentence for people. */
export class FactoryCallError extends Error {
  override readonly name = 'FactoryCallError';
  readonly kind: string;
  constructor(readonly error: FactoryError) {
    super(describeFactoryError(error));
    this.kind = variantOf(error)[0];
  }
}

/** An `Err` the capsule API returned. `message` is the sentence for people. */
export class CapsuleCallError extends Error {
  override readonly name = 'CapsuleCallError';
  readonly kind: string;
  constructor(readonly error: CapsuleError) {
    super(describeCapsuleError(error));
    this.kind = variantOf(error)[0];
  }
}

/** A sentence for any error thrown by the client or a transport. */
export function describeError(e: unknown): string {
  if (e instanceof FactoryCallError || e instanceof CapsuleCallError || e instanceof RejectError) return e.message;
  if (e instanceof TypeError && /fetch/i.test(e.message))
    return 'The service cannot be reached; check your connection and try again.';
  if (e instanceof Error) return `Something went wrong: ${e.message}`;
  return `Something went wrong: ${String(e)}`;
}

/** `Ok` of a `variant { Ok; Err : Error }`, or a thrown {@link CapsuleCallError}. */
export function unwrapCapsule<T>(r: { Ok: T } | { Err: CapsuleError }): T {
  if ('Err' in r) throw new CapsuleCallError(r.Err);
  return r.Ok;
}

/** `Ok` of a `variant { Ok; Err : FactoryError }`, or a thrown {@link FactoryCallError}. */
export function unwrapFactory<T>(r: { Ok: T } | { Err: FactoryError }): T {
  if ('Err' in r) throw new FactoryCallError(r.Err);
  return r.Ok;
}
