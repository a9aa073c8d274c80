// What is particular to `icemu serve` (the emulator, icemu/README.md): calls go through the
// same @icp-sdk/core agent as on the IC (./ic.ts), which fetches the emulator's root key and
// verifies its certificates and query signatures. Only two things are local:
//
//   - identity names: icemu's identity NAME is the Ed25519 key whose secret key is
//     SHA-256("icemu identity\0" + NAME), so the page calling as `alice` and
//     `icemu call --as alice` are the same principal (these keys are public: emulator only);
//   - `GET /api/v1/canisters` ({"<name>": "<principal text>", ...}) finds canisters by name.
import { Actor, type HttpAgent } from '@icp-sdk/core/agent';
import type { IDL } from '@icp-sdk/core/candid';
import { Ed25519KeyIdentity } from '@icp-sdk/core/identity';
import { Principal } from '@icp-sdk/core/principal';
import type { Plain } from '../types';
import { icAgent, withRejectErrors } from './ic';

export interface IcemuOptions {
  /** Where `icemu serve` listens, e.g. `http://127.0.0.1:4943`; `''` for the page's own origin. */
  baseUrl: string;
  /** The icemu identity name the calls are made as, e.g. `alice`. */
  caller: string;
  fetch?: typeof fetch;
}

/** The Ed25519 identity icemu uses for the identity name `name`. */
export async function icemuIdentity(name: string): Promise<Ed25519KeyIdentity> {
  const bytes = new TextEncoder().encode(`icemu identity\0${name}`);
  const seed = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Ed25519KeyIdentity.generate(seed);
}

/** `icemu serve`'s URL: `baseUrl`, or the page's own origin when it is `''`. */
export function icemuHost(baseUrl: string): string {
  if (baseUrl) return baseUrl.replace(/\/+$/, '');
  const origin = (globalThis as { location?: { origin?: string } }).location?.origin;
  if (!origin) throw new Error('no icemu URL: pass baseUrl (e.g. http://127.0.0.1:4943)');
  return origin;
}

/** An agent on `icemu serve` calling as the icemu identity `caller` (root key fetched). */
export async function icemuAgent(opts: IcemuOptions): Promise<HttpAgent> {
  const identity = await icemuIdentity(opts.caller);
  return icAgent({
    host: icemuHost(opts.baseUrl),
    identity,
    fetchRootKey: true,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
}

/**
 * An actor on `canisterId` through `icemu serve` as the identity `opts.caller`: one async
 * function per method of the service `idlFactory` describes (the agent is made on first use).
 */
export function icemuActor<S>(idlFactory: IDL.InterfaceFactory, canisterId: Principal, opts: IcemuOptions): Plain<S> {
  let actor: Promise<Plain<S>> | null = null;
  const get = () =>
    (actor ??= icemuAgent(opts).then((agent) => withRejectErrors(Actor.createActor<S>(idlFactory, { agent, canisterId }))));
  return new Proxy({} as Plain<S>, {
    get: (_t, name) =>
      typeof name === 'string'
        ? async (...args: unknown[]) => {
            const a = (await get()) as unknown as Record<string, (...x: unknown[]) => Promise<unknown>>;
            const f = a[name];
            if (!f) throw new Error(`no method ${name}`);
            return f(...args);
          }
        : undefined,
  });
}

/** Deployed canister names → ids (`GET /api/v1/canisters`). */
export async function icemuCanisters(opts: Pick<IcemuOptions, 'baseUrl' | 'fetch'>): Promise<Record<string, Principal>> {
  const f = opts.fetch ?? fetch;
  const res = await f(`${icemuHost(opts.baseUrl)}/api/v1/canisters`);
  if (!res.ok) throw new Error(`icemu answered HTTP ${res.status} to GET /api/v1/canisters`);
  const json = (await res.json()) as Record<string, string>;
  return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, Principal.fromText(v)]));
}
