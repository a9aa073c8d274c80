import { describe, expect, it } from 'vitest';
import { HttpAgent } from '@icp-sdk/core/agent';
import { IDL } from '@icp-sdk/core/candid';
import { idlFactory as backendIdl } from '../src/bindings/backend/backend.did';
import { idlFactory as personalIdl } from '../src/bindings/personal/personal.did';
import { icBackend, icPersonal } from '../src/client/transport/ic';
import { CAPSULE_METHODS } from '../src/client/types';
import { BACKEND_ID } from './fake';

const names = (f: IDL.InterfaceFactory) => f({ IDL })._fields.map(([n]) => n).sort();

describe('IC transport', () => {
  // No network: actors are built without calling anything.
  const agent = HttpAgent.createSync({ host: 'http://127.0.0.1:9' });

  it('builds @icp-sdk/core actors with every method of the generated interfaces', () => {
    const backend = icBackend(agent, BACKEND_ID) as unknown as Record<string, unknown>;
    const personal = icPersonal(agent, BACKEND_ID) as unknown as Record<string, unknown>;
    for (const n of names(backendIdl)) expect(typeof backend[n], n).toBe('function');
    for (const n of names(personalIdl)) expect(typeof personal[n], n).toBe('function');
  });

  it('the capsule API is on both interfaces', () => {
    const b = names(backendIdl);
    const p = names(personalIdl);
    for (const m of CAPSULE_METHODS) {
      expect(b).toContain(m);
      expect(p).toContain(m);
    }
    // and the client's list is the whole intersection, apart from what only the personal canister
    // has and the archive restore both have (frontend/src/client/archive.ts, manifests/README.md)
    const restore = ['capsule_root', 'restore_blob_begin', 'restore_blob_chunk', 'restore_blob_finish', 'restore_capsule', 'restore_records'];
    const both = b.filter((m) => p.includes(m) && !restore.includes(m));
    expect(both.sort()).toEqual([...CAPSULE_METHODS].sort());
  });
});
