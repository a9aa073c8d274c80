// Service types derived from the generated bindings (src/bindings/, never edited by hand).
import type { ActorMethod } from '@icp-sdk/core/agent';
import type { _SERVICE as BackendActorService } from '../bindings/backend/backend.did';
import type { _SERVICE as PersonalActorService } from '../bindings/personal/personal.did';

export type {
  BlobDescriptor,
  BlobError,
  BlobRef,
  CapsuleInfo,
  CreatePersonalCanisterConfig,
  CreationPage,
  CreationRecord,
  CreationState,
  CreationSummary,
  Error as CapsuleError,
  FactoryConfig,
  FactoryError,
  FactoryStats,
  ManifestHeader,
  ManifestPage,
  ManifestPageReply,
  PageCursor,
  Prices,
  ReserveAlert,
  ReserveHistoryPage,
  ReserveSnapshot,
  ReserveStatus,
  Memory,
  MemoryInput,
  MemoryKind,
  MemoryPage,
  Progress,
} from '../bindings/backend/backend.did';

/** A service's methods as plain async functions (what both transports provide). */
export type Plain<S> = {
  [K in keyof S]: S[K] extends ActorMethod<infer A, infer R> ? (...args: A) => Promise<R> : never;
};

/** The shared backend: capsule API + factory + admin + export endpoints. */
export type BackendService = Plain<BackendActorService>;
/** A personal canister: capsule API + api_version, import_status, ... */
export type PersonalService = Plain<PersonalActorService>;

/** The methods of the capsule API (identical on the backend and on a personal canister). */
export const CAPSULE_METHODS = [
  'abort_blob_upload',
  'add_connection',
  'add_memory',
  'begin_blob_upload',
  'create_capsule',
  'delete_memory',
  'finish_blob_upload',
  'get_blob',
  'get_blob_chunk',
  'get_capsule',
  'get_memory',
  'list_connections',
  'list_memories',
  'put_blob_chunk',
  'read_blob_range',
  'remove_connection',
  'update_capsule',
  'update_connection',
  'update_memory',
] as const;
export type CapsuleMethod = (typeof CAPSULE_METHODS)[number];

/** The capsule API, as the backend serves it. */
export type CapsuleService = Pick<BackendService, CapsuleMethod>;

// Compile-time proof that the personal canister's generated capsule API is the backend's
// (the Rust side proves the .did files agree; this proves the bindings do).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const capsuleApisAgree: Same<Pick<PersonalService, CapsuleMethod>, CapsuleService> = true;
void capsuleApisAgree;

/** A creation state's name, e.g. `"Importing"`. */
export type CreationStateName =
  | 'NotStarted'
  | 'Exporting'
  | 'Creating'
  | 'Installing'
  | 'Importing'
  | 'Verifying'
  | 'Completed'
  | 'Failed';

/** The states a creation goes through on success, in order. */
export const CREATION_STATES: readonly CreationStateName[] = [
  'NotStarted',
  'Exporting',
  'Creating',
  'Installing',
  'Importing',
  'Verifying',
  'Completed',
];
