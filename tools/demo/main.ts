/**
 * `npm run demo`: the use case of DESIGN.md §2, end to end, for real, on 127.0.0.1.
 *
 * It starts five `keymesh start` processes (the IDP's POP: 1 node; datacenter 1: 1 node; datacenter 2, the secret
 * server: 3 nodes), an OpenID provider (oidc-provider, in this process) and datacenter 1's backend (in this
 * process), then plays the user's browser through the five steps, and once more reading the data back, printing
 * a line for everything that happened. Exit code 0 only when every step worked; otherwise 1 and a line naming the
 * step and the reason. Every process and temporary directory it made is removed at the end, on failure, and on
 * Ctrl-C / SIGTERM (also when the shell that started it goes away).
 *
 * `--break audience` registers another audience for datacenter 1's users in datacenter 2, `--break password`
 * makes the browser type a wrong password: each shows how a failing step is reported.
 */
import '../../src/polyfills.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanUpOnSignal } from '../harness/processes.js';
import { startBackend } from './backend.js';
import { Browser } from './browser.js';
import { DemoCluster } from './clusters.js';
import { closeServer } from './http.js';
import { listenOnLoopback } from '../harness/http.js';
import { loadOidcProvider } from '../harness/oidc.js';
import { startIdp } from './idp.js';
import { Narrator, STEPS, short, StepFailed } from './report.js';

/** How long the clusters may take to start and form their maps. */
const START_TIMEOUT_MS = 40_000;
/** How often to check that the launching shell is still there. */
const PARENT_CHECK_INTERVAL_MS = 250;

const WEB_APP = 'demo-web-app';
const DC1_ISSUER = 'https://dc1.example';
const DC1_AUDIENCE = 'https://dc1.example/backend';
const DC2_ISSUER = 'https://dc2.example';
const USER = 'alice';
const NOTE = "alice's note: the spare key is under the blue flowerpot";

const { values } = parseArgs({ options: { break: { type: 'string' } } });
if (values.break !== undefined && !['audience', 'password'].includes(values.break)) {
  console.error('--break takes "audience" or "password"');
  process.exit(2);
}

async function run(narrator: Narrator, root: string, stops: Array<() => Promise<void>>): Promise<void> {
  const { Provider, version } = await loadOidcProvider();
  const idpPop = await DemoCluster.prepare(root, {
    label: "the IDP's POP",
    id: 'demo-idp-pop',
    size: 1,
    issuer: 'https://idp-pop.example',
  });
  const dc1 = await DemoCluster.prepare(root, { label: 'datacenter 1', id: 'demo-dc1', size: 1, issuer: DC1_ISSUER });
  const app = await listenOnLoopback();
  stops.push(() => closeServer(app.server));
  const password = randomBytes(12).toString('base64url');
  const idp = await startIdp(Provider, {
    popNode: idpPop.urls()[0]!,
    popToken: idpPop.backendToken,
    users: new Map([[USER, password]]),
    client: { clientId: WEB_APP, redirectUri: `${app.url}/callback` },
    narrator,
  });
  stops.push(() => idp.close());
  narrator.say(
    `OpenID provider: oidc-provider ${version} at ${idp.issuer}, ID tokens ES256 (kid ${short(idp.kid)}) for client ${WEB_APP}; its login check decrypts through the IDP's POP node`,
  );

  const userAudience = values.break === 'audience' ? 'https://another-app.example' : WEB_APP;
  const dc2 = await DemoCluster.prepare(root, { label: 'datacenter 2', id: 'demo-dc2', size: 3, issuer: DC2_ISSUER });
  for (const c of [idpPop, dc1, dc2]) stops.push(() => c.stop());
  const started = performance.now();
  // every start runs to its end before anything is stopped, so no node is spawned after the clean-up
  const starts = await Promise.allSettled([idpPop, dc1, dc2].map((c) => c.start(START_TIMEOUT_MS)));
  const failed = starts.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  const epochs = starts.map((s) => (s as PromiseFulfilledResult<number>).value);
  const took = `${((performance.now() - started) / 1000).toFixed(1)} s`;
  narrator.say(`the IDP's POP: 1 keymesh node at ${idpPop.urls()[0]}, its /pop is the key set the login page names`);
  narrator.say(
    `datacenter 1: 1 keymesh node at ${dc1.urls()[0]} (issuer ${DC1_ISSUER}); its /pop is what the browser encrypts data to`,
  );
  narrator.say(
    `datacenter 2: 3 keymesh nodes at ${dc2.urls().join(', ')} (cluster map epoch ${epochs[2]}, all members, keys agree)`,
  );
  // an operator registers the IDP and the resource server at run time, on one node; every node serves them
  await dc2.register(
    'issuers',
    idp.issuer,
    { issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['ES256'], audiences: [userAudience] },
    START_TIMEOUT_MS,
  );
  const registered = await dc2.register(
    'resource-servers',
    DC1_AUDIENCE,
    {
      audience: DC1_AUDIENCE,
      clientId: DC1_ISSUER,
      jwksUri: `${dc1.urls()[0]}/pop`,
      userTokenAudiences: [userAudience],
    },
    START_TIMEOUT_MS,
  );
  narrator.say(
    `registered on node-1 through /v1/registrations, served by all 3 nodes at registrations version ${registered}: datacenter 2 trusts issuer ${idp.issuer} (jwks_uri ${new URL(idp.jwksUri).pathname}, ES256, audience ${userAudience}); resource server ${DC1_AUDIENCE} = client ${DC1_ISSUER}, key set ${dc1.urls()[0]}/pop`,
  );
  narrator.say(`5 node processes ready in ${took}`);

  const backend = startBackend(app, {
    dc1: dc1.urls(),
    dc1Token: dc1.backendToken,
    dc2: dc2.urls(),
    dc2Names: dc2.nodes.nodes.map((n) => n.name),
    dc2Issuer: DC2_ISSUER,
    audience: DC1_AUDIENCE,
    idp: { issuer: idp.issuer, jwksUri: idp.jwksUri, clientId: WEB_APP },
    narrator,
  });
  narrator.say(`datacenter 1's backend at ${backend.url}: SecretClient → datacenter 2 as ${DC1_AUDIENCE}`);

  const browser = new Browser({
    idpIssuer: idp.issuer,
    clientId: WEB_APP,
    redirectUri: `${app.url}/callback`,
    backend: backend.url,
    dataPopUri: `${dc1.urls()[0]}/pop`,
    narrator,
  });
  const idToken = await narrator.step(1, () =>
    browser.login(USER, values.break === 'password' ? `not-${password}` : password),
  );
  await narrator.step(2, () => browser.store(idToken, NOTE));

  narrator.plain(
    '\nlater: the browser reads the data back (steps 2–5 again; the backend asks the next datacenter-2 node)',
  );
  const back = await narrator.step(2, () => browser.read(idToken));
  if (back !== NOTE) throw new StepFailed(5, `the browser got back other data than it stored: ${JSON.stringify(back)}`);
  narrator.say('browser got back exactly the data it sent: datacenter 2 gave the same secret again');
}

/** Treats the loss of the launching shell like SIGTERM (`npm run` under `sh -c` does not pass SIGTERM on). */
function watchParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  }, PARENT_CHECK_INTERVAL_MS).unref();
}

async function main(): Promise<number> {
  const began = performance.now();
  const narrator = new Narrator();
  const root = mkdtempSync(join(tmpdir(), 'keymesh-demo-'));
  const uninstall = cleanUpOnSignal(root, (line) =>
    narrator.plain(`\ndemo ${line}: killed every node it started, removed ${root}`),
  );
  watchParent();
  narrator.plain(`keymesh demo: DESIGN.md §2 end to end on 127.0.0.1 (temporary data in ${root})`);
  const stops: Array<() => Promise<void>> = [];
  let failure: StepFailed | undefined;
  try {
    await run(narrator, root, stops);
  } catch (err) {
    failure =
      err instanceof StepFailed ? err : new StepFailed(narrator.current, (err as Error).message, { cause: err });
    if (failure.step !== 'setup') narrator.begin(failure.step);
    narrator.say(`FAILED: ${failure.message}`);
  }
  const seconds = ((performance.now() - began) / 1000).toFixed(1);
  const stopped = await Promise.allSettled(stops.reverse().map((stop) => stop()));
  rmSync(root, { recursive: true, force: true });
  uninstall();
  const unclean = stopped.filter((s) => s.status === 'rejected').length;
  narrator.plain(
    `\ncleanup: stopped the keymesh nodes, the IDP and the backend${unclean ? ` (${unclean} did not stop cleanly)` : ''}; removed ${root}`,
  );
  if (failure) {
    const where = failure.step === 'setup' ? 'setup' : `step ${failure.step} (${STEPS[failure.step]})`;
    narrator.plain(`demo FAILED at ${where}: ${failure.message}`);
    return 1;
  }
  narrator.plain(`demo passed: all five steps worked (${seconds} s)`);
  return unclean ? 1 : 0;
}

process.exit(await main());
