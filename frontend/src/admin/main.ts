// The admin console: sign in (an icemu identity locally; on the IC a key, see signin.ts), a
// clear "not an admin" page for anyone else, then three views: the reserve (figures, chart,
// alerts, top-up, creation switch), creations (counts, table, detail, manifest, cleanup) and
// the settings. Every action asks for confirmation; a refusal shows the backend's typed error
// as a sentence.
//
// Configuration comes from the URL, as on the user page:
//   ?as=admin                          the icemu identity to call as (asked for when absent)
//   ?icemu=http://127.0.0.1:4943       icemu serve elsewhere
//   ?transport=ic&host=...&backend=<canister id>[&local=1]   the IC agent
import { AdminClient } from '../client/admin';
import { connect, describeError, type ConnectConfig } from '../client';
import { ConfigInputError, readConfigForm, renderConfigForm } from './config';
import { loadCreations, wireCreations } from './creations';
import { $, confirmAction, say } from './dom';
import { wireManifest } from './manifest';
import { KEY_STORAGE, identityFromKey } from './signin';
import { loadReserve, wireReserve } from './reserve';

type View = 'reserve' | 'creations' | 'settings';
const VIEWS: View[] = ['reserve', 'creations', 'settings'];

/** The identity of the key kept in this tab; a key that no longer reads is dropped. */
function storedIdentity(key: string) {
  try {
    return identityFromKey(key);
  } catch (e) {
    sessionStorage.removeItem(KEY_STORAGE);
    throw e;
  }
}

function configFromUrl(): ConnectConfig | null {
  const q = new URLSearchParams(location.search);
  if (q.get('transport') === 'ic') {
    const backend = q.get('backend');
    if (!backend) throw new Error('?transport=ic needs &backend=<canister id>');
    const key = sessionStorage.getItem(KEY_STORAGE);
    return {
      transport: 'ic',
      host: q.get('host') ?? 'https://icp-api.io',
      backendId: backend,
      fetchRootKey: q.get('local') === '1',
      // Without a key the calls are anonymous, and the console says "not an admin".
      ...(key ? { identity: storedIdentity(key) } : {}),
    };
  }
  const as = q.get('as');
  if (!as) return null;
  return {
    transport: 'icemu',
    baseUrl: q.get('icemu') ?? '',
    caller: as,
    ...(q.get('backend') ? { backendId: q.get('backend') as string } : {}),
  };
}

let admin: AdminClient;
let busyNow = false;

/** Runs one action at a time; its error is shown as a sentence. */
async function busy(f: () => Promise<void>): Promise<void> {
  if (busyNow) return;
  busyNow = true;
  document.body.dataset.busy = 'true';
  try {
    await f();
  } catch (e) {
    say(e instanceof ConfigInputError ? e.message : describeError(e), 'error');
  } finally {
    busyNow = false;
    delete document.body.dataset.busy;
  }
}

function currentView(): View {
  const v = location.hash.replace('#', '') as View;
  return VIEWS.includes(v) ? v : 'reserve';
}

async function show(view: View): Promise<void> {
  for (const s of document.querySelectorAll<HTMLElement>('main section[data-view]')) s.hidden = s.dataset.view !== view;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#tabs a'))
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  document.body.dataset.view = view;
  if (view === 'reserve') await loadReserve(admin);
  else if (view === 'creations') await loadCreations(admin, { reset: true });
  else renderConfigForm($('config-fields'), await admin.config());
  document.body.dataset.loaded = view;
}

/** Shows the view the hash names, once the action under way (if any) is over. */
async function navigate(): Promise<void> {
  while (busyNow) await new Promise((r) => setTimeout(r, 50));
  await busy(() => show(currentView()));
}

function wireSignIn(config: ConnectConfig | null): void {
  const onIc = new URLSearchParams(location.search).get('transport') === 'ic';
  const name = $<HTMLInputElement>('signin-name');
  const key = $<HTMLTextAreaElement>('signin-key');
  $('signin-name-label').hidden = onIc;
  $('signin-key-label').hidden = !onIc;
  $('signout').hidden = !(onIc ? sessionStorage.getItem(KEY_STORAGE) : config);
  name.value = config?.transport === 'icemu' ? config.caller : '';
  $<HTMLFormElement>('signin').onsubmit = (ev) => {
    ev.preventDefault();
    if (onIc) {
      try {
        identityFromKey(key.value);
      } catch (e) {
        return say(e instanceof Error ? e.message : String(e), 'error');
      }
      sessionStorage.setItem(KEY_STORAGE, key.value.trim());
      key.value = '';
      location.reload();
      return;
    }
    const q = new URLSearchParams(location.search);
    if (!name.value.trim()) return say('Type an identity name to sign in as.', 'error');
    q.set('as', name.value.trim());
    location.search = q.toString();
  };
  $('signout').onclick = () => {
    sessionStorage.removeItem(KEY_STORAGE);
    const q = new URLSearchParams(location.search);
    q.delete('as');
    location.search = q.toString();
  };
}

function wireSettings(): void {
  $<HTMLFormElement>('config-form').onsubmit = (ev) => {
    ev.preventDefault();
    void busy(async () => {
      const config = readConfigForm($('config-fields'));
      if (!(await confirmAction('Save these settings? They apply to every creation from now on.', 'Save'))) return;
      renderConfigForm($('config-fields'), await admin.setConfig(config));
      say('The settings were saved.');
    });
  };
}

async function main(): Promise<void> {
  wireSignIn(null); // signing in works even when the URL or the stored key cannot be read
  const config = configFromUrl();
  wireSignIn(config);
  if (!config) {
    $('who').textContent = 'Sign in with an admin identity.';
    document.body.dataset.ready = 'signin';
    return;
  }
  const conn = await connect(config);
  const name = config.transport === 'icemu' ? config.caller : 'you';
  $('who').textContent = `Signed in as ${name} (${conn.principal.toText()})`;
  $('who').dataset.principal = conn.principal.toText();
  admin = new AdminClient(conn.backend);
  if (!(await admin.isAdmin())) {
    $('not-admin').hidden = false;
    $('not-admin-text').textContent = `${name} (${conn.principal.toText()}) is not an administrator of this factory. Sign in with an admin identity.`;
    document.body.dataset.ready = 'not-admin';
    return;
  }
  $('tabs').hidden = false;
  $('console').hidden = false;
  wireReserve(admin, busy);
  wireCreations(admin, busy);
  wireManifest(admin, busy);
  wireSettings();
  window.addEventListener('hashchange', () => void navigate());
  await show(currentView());
  document.body.dataset.ready = 'admin';
}

main().catch((e) => {
  say(describeError(e), 'error');
  document.body.dataset.ready = 'error';
});
