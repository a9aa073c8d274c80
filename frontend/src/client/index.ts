// The client's public surface, and `connect()` for either transport.
import type { HttpAgent, Identity } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import { PersonalCanisterClient, type Backoff } from './creation';
import { icAgent, icBackend, icPersonal } from './transport/ic';
import { icemuAgent, icemuCanisters } from './transport/icemu';
import type { BackendService, PersonalService } from './types';

export * from './creation';
export * from './errors';
export * from './types';
export * from './upload';

export type ConnectConfig =
  | {
      transport: 'ic';
      host: string;
      backendId: Principal | string;
      identity?: Identity;
      fetchRootKey?: boolean;
      backoff?: Partial<Backoff>;
    }
  | {
      transport: 'icemu';
      /** `icemu serve`'s URL; `''` when the page is served by icemu itself. */
      baseUrl: string;
      /** The icemu identity name to call as, e.g. `alice` (its key signs the calls). */
      caller: string;
      /** The backend's id; looked up as the canister named `backend` when absent. */
      backendId?: Principal | string;
      backoff?: Partial<Backoff>;
    };

export interface Connection {
  client: PersonalCanisterClient;
  backend: BackendService;
  backendId: Principal;
  personal: (canisterId: Principal) => PersonalService;
  /** The caller's principal. */
  principal: Principal;
  /** The agent every actor of this connection calls through (e.g. for the management canister). */
  agent: HttpAgent;
}

function toPrincipal(p: Principal | string): Principal {
  return typeof p === 'string' ? Principal.fromText(p) : p;
}

/**
 * Connects to the backend through the @icp-sdk/core agent: on the IC, or on `icemu serve`
 * (root key fetched from it, calls signed with the icemu identity's key).
 */
export async function connect(config: ConnectConfig): Promise<Connection> {
  let agent: HttpAgent;
  let backendId: Principal;
  if (config.transport === 'ic') {
    agent = await icAgent(config);
    backendId = toPrincipal(config.backendId);
  } else {
    agent = await icemuAgent({ baseUrl: config.baseUrl, caller: config.caller });
    if (config.backendId) backendId = toPrincipal(config.backendId);
    else {
      const id = (await icemuCanisters({ baseUrl: config.baseUrl }))['backend'];
      if (!id) throw new Error('icemu has no canister named "backend"; deploy it first (see frontend/README.md)');
      backendId = id;
    }
  }
  const backend = icBackend(agent, backendId);
  const personal = (id: Principal): PersonalService => icPersonal(agent, id);
  const principal = await agent.getPrincipal();
  const client = new PersonalCanisterClient({
    backend,
    backendId,
    personal,
    ...(config.backoff ? { backoff: config.backoff } : {}),
  });
  return { client, backend, backendId, personal, principal, agent };
}
