// The one transport, locally (`icemu serve`) and on the IC: the @icp-sdk/core agent, with
// actors built on the generated IDL. Rejects come out as the client's RejectError.
import { Actor, AgentError, HttpAgent, type Identity } from '@icp-sdk/core/agent';
import type { Principal } from '@icp-sdk/core/principal';
import { idlFactory as backendIdl, type _SERVICE as BackendActorService } from '../../bindings/backend/backend.did';
import { idlFactory as personalIdl, type _SERVICE as PersonalActorService } from '../../bindings/personal/personal.did';
import { RejectError } from '../errors';
import type { BackendService, PersonalService, Plain } from '../types';

export interface IcOptions {
  /** The IC API host, e.g. `https://icp-api.io`, or a local replica's or `icemu serve`'s URL. */
  host: string;
  /** The caller (e.g. from Internet Identity); anonymous when absent. */
  identity?: Identity;
  /** Fetch the root key: only for a local replica or `icemu serve`, never on mainnet. */
  fetchRootKey?: boolean;
  /** The fetch the agent uses (tests). */
  fetch?: typeof fetch;
}

export async function icAgent(opts: IcOptions): Promise<HttpAgent> {
  return HttpAgent.create({
    host: opts.host,
    ...(opts.identity ? { identity: opts.identity } : {}),
    shouldFetchRootKey: opts.fetchRootKey ?? false,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
}

/** The reject inside an agent error (certified or not), if it is one. */
export function rejectOf(e: unknown): { rejectCode: number; rejectErrorCode: string | undefined; rejectMessage: string } | null {
  if (!(e instanceof AgentError)) return null;
  const code = e.cause.code as unknown as Partial<{ rejectCode: number; rejectErrorCode: string; rejectMessage: string }>;
  if (typeof code.rejectCode !== 'number' || typeof code.rejectMessage !== 'string') return null;
  return { rejectCode: code.rejectCode, rejectErrorCode: code.rejectErrorCode, rejectMessage: code.rejectMessage };
}

/** `actor`'s methods, each turning an agent reject into a RejectError naming the method. */
export function withRejectErrors<S>(actor: S): Plain<S> {
  const out: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  const methods = actor as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of Object.keys(methods)) {
    const f = methods[name];
    if (typeof f !== 'function') continue;
    out[name] = async (...args: unknown[]) => {
      try {
        return await f(...args);
      } catch (e) {
        const r = rejectOf(e);
        if (r) throw new RejectError(r.rejectCode, r.rejectErrorCode ?? '', r.rejectMessage, name);
        throw e;
      }
    };
  }
  return out as Plain<S>;
}

export function icBackend(agent: HttpAgent, canisterId: Principal): BackendService {
  return withRejectErrors(Actor.createActor<BackendActorService>(backendIdl, { agent, canisterId }));
}

export function icPersonal(agent: HttpAgent, canisterId: Principal): PersonalService {
  return withRejectErrors(Actor.createActor<PersonalActorService>(personalIdl, { agent, canisterId }));
}
