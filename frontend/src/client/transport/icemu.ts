// Local transport: posts candid-encoded calls to `icemu serve`, which runs the real canister
// wasm on this machine. Arguments and replies are encoded and decoded with the generated IDL,
// exactly as the IC agent does; only the envelope differs (see frontend/README.md).
//
//   POST /api/v1/call            content-type: application/candid
//        body  = record { canister_id : principal; method : text; caller : text;
//                         arg : blob; kind : variant { update; query } }
//        reply = variant { Ok : blob; Err : record { reject_code : nat32; error_code : text;
//                                                    message : text } }
//   GET  /api/v1/identity/<name> principal text of an identity name
//   GET  /api/v1/canisters       {"<name>": "<principal text>", ...}
import { IDL } from '@icp-sdk/core/candid';
import { Principal } from '@icp-sdk/core/principal';
import { RejectError } from '../errors';
import type { Plain } from '../types';

export const CallRequest = IDL.Record({
  canister_id: IDL.Principal,
  method: IDL.Text,
  caller: IDL.Text,
  arg: IDL.Vec(IDL.Nat8),
  kind: IDL.Variant({ update: IDL.Null, query: IDL.Null }),
});
export const CallReply = IDL.Variant({
  Ok: IDL.Vec(IDL.Nat8),
  Err: IDL.Record({ reject_code: IDL.Nat32, error_code: IDL.Text, message: IDL.Text }),
});

export interface CallRequestValue {
  canister_id: Principal;
  method: string;
  caller: string;
  arg: Uint8Array;
  kind: { update: null } | { query: null };
}
export type CallReplyValue =
  | { Ok: Uint8Array }
  | { Err: { reject_code: number; error_code: string; message: string } };

export interface IcemuOptions {
  /** Where `icemu serve` listens, e.g. `http://127.0.0.1:4943`; `''` for the page's own origin. */
  baseUrl: string;
  /** The identity name the calls are made as (icemu maps names to principals), e.g. `alice`. */
  caller: string;
  fetch?: typeof fetch;
}

function url(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path}`;
}

/** Makes one call through `icemu serve` and returns the raw candid reply bytes. */
export async function icemuCall(
  opts: IcemuOptions,
  canisterId: Principal,
  method: string,
  arg: Uint8Array,
  query: boolean,
): Promise<Uint8Array> {
  const req: CallRequestValue = {
    canister_id: canisterId,
    method,
    caller: opts.caller,
    arg,
    kind: query ? { query: null } : { update: null },
  };
  const body = IDL.encode([CallRequest], [req]);
  const f = opts.fetch ?? fetch;
  const res = await f(url(opts.baseUrl, '/api/v1/call'), {
    method: 'POST',
    headers: { 'content-type': 'application/candid' },
    body: new Blob([body as Uint8Array<ArrayBuffer>]),
  });
  if (!res.ok) throw new Error(`icemu answered HTTP ${res.status} to ${method}: ${await res.text()}`);
  const [reply] = IDL.decode([CallReply], new Uint8Array(await res.arrayBuffer())) as [CallReplyValue];
  if ('Err' in reply) {
    const { reject_code, error_code, message } = reply.Err;
    throw new RejectError(reject_code, error_code, message, method);
  }
  return reply.Ok;
}

/**
 * An actor on `canisterId` through `icemu serve`: one async function per method of the
 * service `idlFactory` describes, taking and returning the generated binding types.
 */
export function icemuActor<S>(idlFactory: IDL.InterfaceFactory, canisterId: Principal, opts: IcemuOptions): Plain<S> {
  const service = idlFactory({ IDL });
  const actor: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const [name, func] of service._fields) {
    const query = func.annotations.includes('query') || func.annotations.includes('composite_query');
    actor[name] = async (...args: unknown[]) => {
      const arg = IDL.encode(func.argTypes, args);
      const replyBytes = await icemuCall(opts, canisterId, name, arg, query);
      const out = IDL.decode(func.retTypes, replyBytes);
      return out.length === 0 ? undefined : out.length === 1 ? out[0] : out;
    };
  }
  return actor as Plain<S>;
}

/** Deployed canister names → ids (`GET /api/v1/canisters`). */
export async function icemuCanisters(opts: Pick<IcemuOptions, 'baseUrl' | 'fetch'>): Promise<Record<string, Principal>> {
  const f = opts.fetch ?? fetch;
  const res = await f(url(opts.baseUrl, '/api/v1/canisters'));
  if (!res.ok) throw new Error(`icemu answered HTTP ${res.status} to GET /api/v1/canisters`);
  const json = (await res.json()) as Record<string, string>;
  return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, Principal.fromText(v)]));
}

/** The principal icemu uses for an identity name (`GET /api/v1/identity/<name>`). */
export async function icemuIdentity(opts: Pick<IcemuOptions, 'baseUrl' | 'fetch'>, name: string): Promise<Principal> {
  const f = opts.fetch ?? fetch;
  const res = await f(url(opts.baseUrl, `/api/v1/identity/${encodeURIComponent(name)}`));
  if (!res.ok) throw new Error(`icemu answered HTTP ${res.status} to GET /api/v1/identity/${name}`);
  return Principal.fromText((await res.text()).trim());
}
