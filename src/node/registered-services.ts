/**
 * The services built from registrations (issue 16): the secret server, each realm's token service and the operator
 * tokens, made again from the registry (`src/registrations/registry.ts`) when what it serves changed. The check runs
 * as a request reaches them (a comparison of the log version), so a request sees exactly the registrations the
 * node's view holds at that moment, the view `/v1/registrations` answers from. A realm's token service is replaced
 * only when its own clients or resource servers changed, so its caches (client key sets, POPs) outlive changes
 * elsewhere; a request already running finishes on the service it started on.
 *
 * While the registry waits to catch up with the log after a restart, nothing registered is served: the token routes
 * and the secret server answer `ERR_UNAVAILABLE`, and only the node's own admin token authenticates operators.
 */
import { DEFAULT_REALM } from '../config/defaults.js';
import type { Config } from '../config/types.js';
import { KeymeshError } from '../errors.js';
import type { OperatorAuth, OperatorToken } from '../http/operator-auth.js';
import type { Registry } from '../registrations/registry.js';
import { canonical } from '../registrations/registry.js';
import type { SecretServer } from '../secret-server/secret-server.js';
import type { TokenService } from '../tokens/token-service.js';
import { createSecretServer, createTokenService, type SharedParts } from './token-services.js';

export class RegisteredServices {
  readonly #tokens = new Map<string, TokenService>();
  /** Each realm's token service, as HTTP reads it per request. */
  readonly tokens: Pick<ReadonlyMap<string, TokenService>, 'get'> = {
    get: (realm) => {
      this.fresh();
      return this.#tokens.get(realm);
    },
  };
  readonly #config: Config;
  readonly #shared: SharedParts;
  readonly #registry: Registry;
  readonly #auth: OperatorAuth;
  readonly #root: OperatorToken;
  readonly #signatures = new Map<string, string>();
  #secretServer: SecretServer | undefined;
  /** The phase and log version the services were last built from. */
  #builtFrom = '';

  /** `root` is the node's own admin token: always accepted, whatever is registered. */
  constructor(config: Config, shared: SharedParts, registry: Registry, auth: OperatorAuth, root: OperatorToken) {
    this.#config = config;
    this.#shared = shared;
    this.#registry = registry;
    this.#auth = auth;
    this.#root = root;
    this.fresh();
  }

  /** The secret server, as HTTP sees it: unavailable while the registrations are loading. */
  readonly secretServer: Pick<SecretServer, 'exchange'> = {
    exchange: (request) => {
      this.fresh();
      if (!this.#secretServer)
        throw new KeymeshError(
          'ERR_UNAVAILABLE',
          'this node is loading its registrations (catching up with the cluster); try again shortly',
        );
      return this.#secretServer.exchange(request);
    },
  };

  /** Builds again what the registrations changed since the last build, if anything did. */
  fresh(): void {
    const from = `${this.#registry.phase}:${this.#registry.log.version}`;
    if (from === this.#builtFrom) return;
    this.#builtFrom = from;
    this.#refresh();
  }

  #refresh(): void {
    const registry = this.#registry;
    const waiting = registry.phase === 'waiting';
    const live: Config = {
      ...this.#config,
      clients: registry.records('client') as Config['clients'],
      resourceServers: registry.records('resource-server') as Config['resourceServers'],
      trustedIssuers: registry.records('issuer') as Config['trustedIssuers'],
      operatorTokens: registry.records('operator') as Config['operatorTokens'],
    };
    this.#auth.replace([this.#root, ...live.operatorTokens]);
    const secretSignature = canonical([
      waiting,
      live.resourceServers.filter((r) => r.realm === DEFAULT_REALM),
      live.trustedIssuers.filter((t) => t.realm === DEFAULT_REALM),
    ]);
    if (this.#signatures.get('\u0000secret-server') !== secretSignature) {
      this.#signatures.set('\u0000secret-server', secretSignature);
      this.#secretServer = waiting ? undefined : createSecretServer(live, this.#shared);
    }
    for (const realm of Object.keys(this.#config.realms)) {
      const signature = canonical([
        waiting,
        live.clients.filter((c) => c.realms.includes(realm)),
        live.resourceServers.filter((r) => r.realm === realm),
      ]);
      if (this.#signatures.get(realm) === signature) continue;
      this.#signatures.set(realm, signature);
      if (waiting) this.#tokens.delete(realm);
      else this.#tokens.set(realm, createTokenService(live, this.#shared, realm));
    }
  }
}
