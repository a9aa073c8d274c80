import { describe, expect, it } from 'vitest';
import { AgentError, CertifiedRejectErrorCode, ErrorKindEnum, UnexpectedErrorCode } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import { idlFactory as backendIdl, type _SERVICE as BackendActorService } from '../src/bindings/backend/backend.did';
import { RejectError } from '../src/client/errors';
import { withRejectErrors } from '../src/client/transport/ic';
import { icemuActor, icemuCanisters, icemuHost, icemuIdentity } from '../src/client/transport/icemu';

const BACKEND = Principal.fromText('bkyz2-fmaaa-aaaaa-qaaaq-cai');

describe('icemu through the agent', () => {
  // `icemu identity alice` prints this principal (icemu/src/state.rs derives the same key; the
  // Rust test icemu/tests/agent.rs checks an agent signing with it is that principal).
  it('an icemu identity name is the Ed25519 key icemu derives from it', async () => {
    const alice = await icemuIdentity('alice');
    expect(alice.getPrincipal().toText()).toBe('pmla3-td657-2jrpc-lwx4b-ar4uv-kbnye-rjcwl-qi7gc-os5xi-zlmyg-xae');
    expect((await icemuIdentity('admin')).getPrincipal().toText()).toBe(
      '6saow-dtrdl-fjgdl-pa5ce-2dpkg-gnnar-q3x5l-p6ex5-kz2op-umau7-bae',
    );
    expect((await icemuIdentity('bob')).getPrincipal().toText()).not.toBe(alice.getPrincipal().toText());
  });

  it('finds canisters by name at the given URL or the page origin', async () => {
    const urls: string[] = [];
    const fetch = (async (input: RequestInfo | URL) => {
      urls.push(String(input));
      return new Response(JSON.stringify({ backend: BACKEND.toText() }), { headers: { 'content-type': 'application/json' } });
    }) as typeof globalThis.fetch;
    expect((await icemuCanisters({ baseUrl: 'http://127.0.0.1:9/', fetch }))['backend']?.toText()).toBe(BACKEND.toText());
    expect(urls).toEqual(['http://127.0.0.1:9/api/v1/canisters']);
    expect(() => icemuHost('')).toThrow('no icemu URL');
  });

  it('an icemu actor contacts nothing until a method is called', async () => {
    let calls = 0;
    const fetch = (async () => {
      calls += 1;
      return new Response('down', { status: 503 });
    }) as typeof globalThis.fetch;
    const backend = icemuActor<BackendActorService>(backendIdl, BACKEND, { baseUrl: 'http://127.0.0.1:9', caller: 'a', fetch });
    expect(calls).toBe(0);
    await expect(backend.get_capsule()).rejects.toThrow();
    expect(calls).toBeGreaterThan(0);
  });
});

describe('rejects through the agent', () => {
  const reject = new AgentError(
    new CertifiedRejectErrorCode(new Uint8Array(32) as never, 5, 'Canister trapped explicitly: boom', 'IC0503'),
    ErrorKindEnum.Reject,
  );

  it('an agent reject becomes a RejectError naming the method', async () => {
    const actor = withRejectErrors({ get_capsule: async () => Promise.reject(reject) }) as unknown as {
      get_capsule: () => Promise<unknown>;
    };
    const e = await actor.get_capsule().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RejectError);
    expect(e).toMatchObject({ rejectCode: 5, errorCode: 'IC0503', method: 'get_capsule' });
    expect((e as Error).message).toBe('The canister ran into an error: Canister trapped explicitly: boom');
  });

  it('other errors pass through unchanged, and replies too', async () => {
    const other = new AgentError(new UnexpectedErrorCode('x'), ErrorKindEnum.Unknown);
    const actor = withRejectErrors({ a: async () => Promise.reject(other), b: async (n: number) => n + 1 }) as unknown as {
      a: () => Promise<unknown>;
      b: (n: number) => Promise<number>;
    };
    await expect(actor.a()).rejects.toBe(other);
    expect(await actor.b(1)).toBe(2);
  });
});
