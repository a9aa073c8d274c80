// The real side of the contract suite: connections to the backend that test/contract/setup.ts
// deployed on `icemu serve`, as fresh icemu identities or as `admin` (the deploying
// controller).
import { inject } from 'vitest';
import { Icemu } from '../../browser/icemu';
import { connect, type Connection } from '../../src/client';

/** icemu on the suite's state directory (its commands reach the running server). */
export function icemu(): Icemu {
  return new Icemu(inject('icemuCmd'), inject('icemuState'));
}

let callers = 0;

/** A connection as a new icemu identity, unique to this run, named after `role`. */
export async function connectAs(role: string): Promise<Connection> {
  callers += 1;
  return connectAsName(`contract-${role}-${process.pid}-${callers}`);
}

/** A connection as the icemu identity `name` (e.g. `admin`, the deploying controller). */
export async function connectAsName(name: string): Promise<Connection> {
  return connect({
    transport: 'icemu',
    baseUrl: inject('icemuUrl'),
    caller: name,
    backoff: { initialMs: 100, maxMs: 1_000 },
  });
}

/** A new identity that has created its capsule on the backend. */
export async function userWithCapsule(role: string, name = 'Contract'): Promise<Connection> {
  const conn = await connectAs(role);
  const created = await conn.backend.create_capsule({ name, bio: '', settings: [] });
  if ('Err' in created) throw new Error(`create_capsule: ${JSON.stringify(Object.keys(created.Err))}`);
  return conn;
}

/** `admin_set_creation_enabled` through the CLI, as `admin`. */
export function setCreationEnabled(enabled: boolean): void {
  const out = icemu().run(['call', '--as', 'admin', 'backend', 'admin_set_creation_enabled', `(${enabled})`]);
  if (!/Ok/.test(out)) throw new Error(`admin_set_creation_enabled: ${out}`);
}
