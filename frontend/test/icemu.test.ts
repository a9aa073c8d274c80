import { describe, expect, it } from 'vitest';
import { IDL } from '@icp-sdk/core/candid';
import { Principal } from '@icp-sdk/core/principal';
import { idlFactory as backendIdl, type _SERVICE as BackendActorService } from '../src/bindings/backend/backend.did';
import { idlFactory as personalIdl, type _SERVICE as PersonalActorService } from '../src/bindings/personal/personal.did';
import { RejectError } from '../src/client/errors';
import {
  CallReply,
  CallRequest,
  icemuActor,
  icemuCanisters,
  icemuIdentity,
  type CallReplyValue,
  type CallRequestValue,
} from '../src/client/transport/icemu';
import { CHUNK_SIZE } from '../src/client/upload';
import { connect } from '../src/client';
import { method } from './idl';

const BACKEND = Principal.fromText('bkyz2-fmaaa-aaaaa-qaaaq-cai');

interface Seen {
  url: string;
  init: RequestInit | undefined;
  req: CallRequestValue | null;
}

/** A fetch that answers like `icemu serve`, replying with `reply(req)`. */
function fakeIcemu(reply: (req: CallRequestValue) => CallReplyValue | Response) {
  const seen: Seen[] = [];
  const f = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    if (url.endsWith('/api/v1/canisters'))
      return new Response(JSON.stringify({ backend: BACKEND.toText() }), {
        headers: { 'content-type': 'application/json' },
      });
    if (url.includes('/api/v1/identity/'))
      return new Response(`${Principal.fromUint8Array(new Uint8Array([7, 7, 7])).toText()}\n`);
    const body = new Uint8Array(await new Response(init?.body).arrayBuffer());
    const [req] = IDL.decode([CallRequest], body) as unknown as [CallRequestValue];
    seen.push({ url, init, req });
    const r = reply(req);
    if (r instanceof Response) return r;
    return new Response(IDL.encode([CallReply], [r]) as Uint8Array<ArrayBuffer>, {
      headers: { 'content-type': 'application/candid' },
    });
  }) as typeof fetch;
  return { fetch: f, seen };
}

describe('icemu transport', () => {
  it('posts a candid call envelope and decodes the reply with the generated IDL', async () => {
    const record = { Err: { NoCreation: null } };
    const { fetch, seen } = fakeIcemu(() => ({
      Ok: IDL.encode(method(backendIdl, 'get_creation_status').retTypes, [record]),
    }));
    const backend = icemuActor<BackendActorService>(backendIdl, BACKEND, {
      baseUrl: 'http://127.0.0.1:9/',
      caller: 'alice',
      fetch,
    });
    expect(await backend.get_creation_status()).toEqual(record);
    const s = seen[0] as Seen;
    expect(s.url).toBe('http://127.0.0.1:9/api/v1/call');
    expect(s.init?.method).toBe('POST');
    expect(new Headers(s.init?.headers).get('content-type')).toBe('application/candid');
    expect(s.req?.canister_id.toText()).toBe(BACKEND.toText());
    expect(s.req?.method).toBe('get_creation_status');
    expect(s.req?.caller).toBe('alice');
    expect(s.req?.kind).toEqual({ query: null });
    expect(IDL.decode([], s.req?.arg as Uint8Array)).toEqual([]);
  });

  it('sends updates as updates, with the arguments candid-encoded (chunk bytes as a blob)', async () => {
    const chunk = new Uint8Array(CHUNK_SIZE).map((_, i) => i % 251);
    const { fetch, seen } = fakeIcemu(() => ({
      Ok: IDL.encode(method(personalIdl, 'put_blob_chunk').retTypes, [{ Ok: new Uint8Array([9]) }]),
    }));
    const personal = icemuActor<PersonalActorService>(personalIdl, BACKEND, { baseUrl: '', caller: 'bob', fetch });
    expect(await personal.put_blob_chunk(4n, 2n, chunk)).toEqual({ Ok: new Uint8Array([9]) });
    const req = seen[0]?.req as CallRequestValue;
    expect(seen[0]?.url).toBe('/api/v1/call');
    expect(req.kind).toEqual({ update: null });
    expect(req.caller).toBe('bob');
    const [upload, index, bytes] = IDL.decode(method(personalIdl, 'put_blob_chunk').argTypes, req.arg);
    expect([upload, index]).toEqual([4n, 2n]);
    expect(bytes).toEqual(chunk);
    // A blob travels as its bytes plus a small header, not as a vector of numbers.
    expect(req.arg.length).toBeLessThan(CHUNK_SIZE + 64);
  });

  it('returns undefined for no results and the tuple for several', async () => {
    const fn = IDL.Func([], [IDL.Nat32, IDL.Text], ['query']);
    const idl: IDL.InterfaceFactory = ({ IDL: I }) => I.Service({ two: fn, none: I.Func([], [], []) });
    const { fetch } = fakeIcemu((req) => ({
      Ok: req.method === 'two' ? IDL.encode([IDL.Nat32, IDL.Text], [3, 'x']) : IDL.encode([], []),
    }));
    const a = icemuActor<{ two: () => Promise<[number, string]>; none: () => Promise<void> }>(idl, BACKEND, {
      baseUrl: '',
      caller: 'a',
      fetch,
    }) as unknown as { two: () => Promise<unknown>; none: () => Promise<unknown> };
    expect(await a.two()).toEqual([3, 'x']);
    expect(await a.none()).toBeUndefined();
  });

  it('throws a RejectError for an Err reply', async () => {
    const { fetch } = fakeIcemu(() => ({
      Err: { reject_code: 5, error_code: 'IC0503', message: 'Canister trapped explicitly: boom' },
    }));
    const backend = icemuActor<BackendActorService>(backendIdl, BACKEND, { baseUrl: '', caller: 'a', fetch });
    const e = await backend.get_capsule().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RejectError);
    expect(e).toMatchObject({ rejectCode: 5, errorCode: 'IC0503', method: 'get_capsule' });
    expect((e as Error).message).toBe('The canister ran into an error: Canister trapped explicitly: boom');
  });

  it('throws on an HTTP error with the status and body', async () => {
    const { fetch } = fakeIcemu(() => new Response('no such canister', { status: 404 }));
    const backend = icemuActor<BackendActorService>(backendIdl, BACKEND, { baseUrl: '', caller: 'a', fetch });
    await expect(backend.get_capsule()).rejects.toThrow('icemu answered HTTP 404 to get_capsule: no such canister');
  });

  it('reads the canister names and identities', async () => {
    const { fetch } = fakeIcemu(() => ({ Ok: new Uint8Array() }));
    expect((await icemuCanisters({ baseUrl: 'http://x', fetch }))['backend']?.toText()).toBe(BACKEND.toText());
    expect((await icemuIdentity({ baseUrl: 'http://x', fetch }, 'alice')).toUint8Array()).toEqual(
      new Uint8Array([7, 7, 7]),
    );
  });

  it('connect() finds the backend by name and makes a client on it', async () => {
    const { fetch, seen } = fakeIcemu(() => ({
      Ok: IDL.encode(method(backendIdl, 'get_creation_status').retTypes, [{ Err: { NoCreation: null } }]),
    }));
    const realFetch = globalThis.fetch;
    globalThis.fetch = fetch;
    try {
      const c = await connect({ transport: 'icemu', baseUrl: '', caller: 'carol' });
      expect(c.backendId.toText()).toBe(BACKEND.toText());
      expect(await c.client.status()).toBeNull();
      expect(seen[0]?.req?.caller).toBe('carol');
    } finally {
      globalThis.fetch = realFetch;
    }
  });
});
