// IC transport: the @icp-sdk/core agent and actors built on the generated IDL.
import { Actor, HttpAgent, type Identity } from '@icp-sdk/core/agent';
import type { Principal } from '@icp-sdk/core/principal';
import { idlFactory as backendIdl, type _SERVICE as BackendActorService } from '../../bindings/backend/backend.did';
import { idlFactory as personalIdl, type _SERVICE as PersonalActorService } from '../../bindings/personal/personal.did';
import type { BackendService, PersonalService } from '../types';

export interface IcOptions {
  /** The IC API host, e.g. `https://icp-api.io`, or a local replica's URL. */
  host: string;
  /** The caller (e.g. from Internet Identity); anonymous when absent. */
  identity?: Identity;
  /** Fetch the root key: only for a local replica, never on mainnet. */
  fetchRootKey?: boolean;
}

export async function icAgent(opts: IcOptions): Promise<HttpAgent> {
  return HttpAgent.create({
    host: opts.host,
    ...(opts.identity ? { identity: opts.identity } : {}),
    shouldFetchRootKey: opts.fetchRootKey ?? false,
  });
}

export function icBackend(agent: HttpAgent, canisterId: Principal): BackendService {
  return Actor.createActor<BackendActorService>(backendIdl, { agent, canisterId });
}

export function icPersonal(agent: HttpAgent, canisterId: Principal): PersonalService {
  return Actor.createActor<PersonalActorService>(personalIdl, { agent, canisterId });
}
