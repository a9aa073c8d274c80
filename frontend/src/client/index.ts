// The client's public surface, and `connect()` for either transport.
import type { Identity } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import { idlFactory as backendIdl, type _SERVICE as BackendActorService } from '../bindings/backend/backend.did';
import { idlFactory as personalIdl, type _SERVICE as PersonalActorService } from '../bindings/personal/personal.did';
import { PersonalCanisterClient, type Backoff } from './creation';
import { icAgent, icBackend, icPersonal } from './transport/ic';
import { icemuActor, icemuCanisters, icemuIdentity } from './transport/icemu';
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
      /** The identity name to call as, e.g. `alice`. */
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
}

function toPrincipal(p: Principal | string): Principal {
  return typeof p === 'string' ? Principal.fromText(p) : p;
}

/** Connects to the backend over the IC agent or `icemu serve`. */
export async function connect(config: ConnectConfig): Promise<Connection> {
  let backend: BackendService;
  let backendId: Principal;
  let personal: (canisterId: Principal) => PersonalService;
  let principal: Principal;
  if (config.transport === 'ic') {
    const agent = await icAgent(config);
    backendId = toPrincipal(config.backendId);
    backend = icBackend(agent, backendId);
    personal = (id) => icPersonal(agent, id);
    principal = await agent.getPrincipal();
  } else {
    const opts = { baseUrl: config.baseUrl, caller: config.caller };
    if (config.backendId) backendId = toPrincipal(config.backendId);
    else {
      const ids = await icemuCanisters(opts);
      const id = ids['backend'];
      if (!id) throw new Error('icemu has no canister named "backend"; deploy it first (see frontend/README.md)');
      backendId = id;
    }
    backend = icemuActor<BackendActorService>(backendIdl, backendId, opts);
    personal = (id) => icemuActor<PersonalActorService>(personalIdl, id, opts);
    principal = await icemuIdentity(opts, config.caller);
  }
  const client = new PersonalCanisterClient({
    backend,
    backendId,
    personal,
    ...(config.backoff ? { backoff: config.backoff } : {}),
  });
  return { client, backend, backendId, personal, principal };
}
