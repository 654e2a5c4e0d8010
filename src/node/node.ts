/**
 * The composition root: builds one node's components in dependency order and starts them; stops them in
 * reverse. It decides nothing else.
 *
 * Start order: management key → data-directory identity (checked before anything is opened or written) →
 * audit log → LevelDB → sealed store → keyring → cluster membership and activation gate → rotation schedule → HTTP (ready:
 * the keys are served) → libp2p host, gossip, sync and seeds (a node not yet connected is a cluster of one).
 */
import { join } from 'node:path';
import { FileAuditLog } from '../audit/file-audit-log.js';
import { recordJoins } from './audit-joins.js';
import { systemClock, type Clock } from '../clock.js';
import { REGISTRATIONS_POLL_MS, ROTATION_CHECK_INTERVAL_MS } from '../config/defaults.js';
import { keyUseMarginMs } from '../config/rules.js';
import type { Config } from '../config/types.js';
import { Cluster } from '../cluster/cluster.js';
import { resolveManagementKey } from '../crypto/management-key-source.js';
import { Sealer } from '../crypto/sealer.js';
import { SnapshotService } from '../snapshot/snapshot-service.js';
import { OperatorAuth, hashOperatorToken } from '../http/operator-auth.js';
import { HttpServer } from '../http/server.js';
import type { TlsReloadOutcome } from '../http/tls-reloader.js';
import { JwksView } from '../keyring/jwks-view.js';
import { Keyring } from '../keyring/keyring.js';
import { PopDecryptor } from '../keyring/pop-decryptor.js';
import { RotationService } from '../keyring/rotation.js';
import { Metrics } from '../metrics/metrics.js';
import { Agreement } from '../replication/agreement.js';
import { recordOnceWith } from '../secret-server/client-assertions.js';
import { PopKeys } from '../secret-server/pop-keys.js';
import { AuthThrottle } from '../tokens/auth-throttle.js';
import { SlowHashPool } from '../tokens/slow-hash.js';
import { CappedFetcher } from '../net/capped-fetch.js';
import { Revocations } from '../tokens/revocations.js';
import type { Logger } from '../log.js';
import type { Startable } from '../startable.js';
import { LevelStore } from '../storage/level-store.js';
import { SealedStore } from '../storage/sealed-store.js';
import { resolveAdminToken } from './admin-token.js';
import { DB_DIR, openDataDir, renewNodeId } from './data-dir.js';
import { HeldManagementKeys } from '../management-key/held-keys.js';
import { Resealer } from '../management-key/reseal.js';
import { ManagementKeyRotation } from '../management-key/rotation.js';
import type { ManagementKeyReport, ManagementKeyRequest } from '../management-key/messages.js';
import type { FaultInjection } from './fault-injection.js';
import { timingFor } from '../timing.js';
import type { SharedParts } from './token-services.js';
import { RegistrationLog } from '../registrations/log.js';
import { Registry } from '../registrations/registry.js';
import { RegisteredServices } from './registered-services.js';

/** What a node is started with besides its config. */
export interface NodeOptions {
  readonly config: Config;
  readonly log: Logger;
  /** The environment, for `KEYMESH_MANAGEMENT_KEY` and `KEYMESH_ADMIN_TOKEN`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly clock?: Clock;
  /** Faults for tests and chaos runs (`--allow-fault-injection`): partitions, clock skew, death before a commit. */
  readonly faults?: FaultInjection;
}

/** One keymesh node. */
export class KeymeshNode implements Startable {
  readonly #o: NodeOptions;
  readonly #started: Startable[] = [];
  #http: HttpServer | undefined;
  #nodeId: string | undefined;
  #ready = false;
  #adminTokenSource: string | undefined;

  constructor(options: NodeOptions) {
    this.#o = options;
  }

  /** The node's HTTP base URL (after start). */
  get url(): string {
    if (!this.#http) throw new Error('HTTP is not started');
    return this.#http.url;
  }

  /** The node's id from its data directory (after start). */
  get nodeId(): string {
    return this.#nodeId!;
  }

  /**
   * Reads the `http.tls` certificate and key again and serves a good new pair to new connections (SIGHUP); a bad
   * pair is logged and refused. `undefined` before the HTTP server listens, or without TLS.
   */
  reloadTls(reason: string): TlsReloadOutcome | undefined {
    return this.#http?.reloadTls(reason);
  }

  /** Where the admin token came from: `KEYMESH_ADMIN_TOKEN` or the path of `admin.token`. */
  get adminTokenSource(): string | undefined {
    return this.#adminTokenSource;
  }

  /**
   * Starts every component. On failure, whatever started is stopped again and the error is rethrown.
   * @throws KeymeshError `ERR_MANAGEMENT_KEY_*`, `ERR_DATA_DIR`, `ERR_CONFIG_INVALID` and others from the components.
   */
  async start(): Promise<void> {
    const { config, log, env } = this.#o;
    const clock = this.#o.clock ?? this.#o.faults?.clock ?? systemClock;
    const managementKey = await resolveManagementKey(
      { env: env.KEYMESH_MANAGEMENT_KEY, file: config.managementKeyFile, pkcs11: config.managementKeyPkcs11 },
      env,
    );
    const identity = openDataDir(config.dataDir, {
      managementKey,
      clusterId: config.clusterId,
      now: new Date(clock.now()),
    });
    this.#nodeId = identity.nodeId;
    const admin = resolveAdminToken(config.dataDir, env.KEYMESH_ADMIN_TOKEN);
    this.#adminTokenSource = admin.source;

    try {
      const metrics = new Metrics();
      // the audit log opens before anything it records can happen, and closes after HTTP stops
      const audit =
        config.audit.file === undefined
          ? undefined
          : new FileAuditLog({
              path: config.audit.file,
              node: identity.nodeId,
              clock,
              writeTimeoutMs: config.audit.writeTimeoutMs,
              maxFileBytes: config.audit.maxFileBytes,
              log: log.child({ component: 'audit' }),
            });
      if (audit) await this.#startComponent(audit);
      const level = new LevelStore(join(config.dataDir, DB_DIR));
      await this.#startComponent(level);
      const sealer = new Sealer(
        identity.keys.find((k) => k.epoch === identity.sealingEpoch)!,
        identity.nodeId,
        identity.keys,
      );
      const store = new SealedStore(level, sealer);
      // a key kept in use past its retirement stops in time for everything it makes to expire before its planned expiry
      const keyring = new Keyring({
        store,
        clock,
        log: log.child({ component: 'keyring' }),
        usableMarginMs: (key) => keyUseMarginMs(config, key.realm, key.use),
      });
      await keyring.load();
      const cluster = new Cluster({
        config,
        nodeId: identity.nodeId,
        managementKeys: () => heldKeys.keys,
        sealer,
        store,
        keyring,
        clock,
        log: log.child({ component: 'cluster' }),
        httpUrl: () => this.url,
        metrics,
        registrations: { version: () => registry.version, heard: (version) => registry.heard(version) },
        ...(this.#o.faults ? { isBlocked: (peer: string) => this.#o.faults!.isBlocked(peer) } : {}),
      });
      this.#o.faults?.onBlock((peers) => cluster.hangUp(peers));
      await cluster.prepare();
      metrics.watch({
        keyring,
        members: () => cluster.members(),
        realms: Object.keys(config.realms),
        ...(audit ? { audit } : {}),
      });
      const agreement = new Agreement({
        nodeId: identity.nodeId,
        name: config.name,
        clusterId: config.clusterId,
        replicationFactor: config.replicationFactor,
        bootstrapExpect: config.bootstrapExpect,
        store,
        clock,
        log: log.child({ component: 'agreement' }),
        metrics,
        ...(this.#o.faults ? { faults: this.#o.faults } : {}),
        renewNodeId: () => renewNodeId(config.dataDir),
        // the verifier's leeway plus how far another node's clock may be off
        expiryGraceMs: 2 * config.clockSkewMs,
        timing: timingFor(config.timingProfile),
        managementKeys: (request: ManagementKeyRequest, from: string): Promise<ManagementKeyReport> =>
          managementKeys.handle(request, from),
      });
      await agreement.load();
      const resealer = new Resealer({
        store,
        acceptorStore: agreement.acceptorStore,
        sealer,
        log: log.child({ component: 'reseal' }),
        removed: () => heldKeys.removedEpochs,
      });
      // stopped before the store closes (components stop in reverse order)
      this.#started.push({ start: async () => undefined, stop: () => resealer.stop() });
      const heldKeys: HeldManagementKeys = new HeldManagementKeys({
        dataDir: config.dataDir,
        keys: identity.keys,
        removed: identity.removed,
        sealer,
        resealer,
        log: log.child({ component: 'management-key' }),
        network: { add: (key) => cluster.network?.add(key), retire: (epoch) => cluster.retireNetworkEpoch(epoch) },
      });
      const managementKeys: ManagementKeyRotation = new ManagementKeyRotation({
        held: heldKeys,
        ...(audit ? { audit } : {}),
        members: () => agreement.view().map?.members.map((m) => ({ nodeId: m.nodeId, name: m.name })) ?? [],
        ask: (nodeId, request, timeoutMs) => agreement.askManagementKeys(nodeId, request, timeoutMs),
        claimEpoch: async (epoch, fingerprint) =>
          Buffer.from((await agreement.getOrCreate(`mkey/${epoch}`, Buffer.from(fingerprint, 'hex'))).value!).toString(
            'hex',
          ),
      });
      if (audit) recordJoins(agreement.keeper, audit);
      const snapshots = new SnapshotService({
        nodeId: identity.nodeId,
        clusterId: config.clusterId,
        replicationFactor: config.replicationFactor,
        dataDir: config.dataDir,
        store,
        sealer,
        clock,
        log: log.child({ component: 'snapshot' }),
        keyring,
        agreement,
        expiryGraceMs: 2 * config.clockSkewMs,
        registry: () => registry,
      });
      cluster.attach(agreement);
      const rotation = new RotationService({
        keyring,
        clock,
        realms: config.realms,
        nodeId: identity.nodeId,
        log: log.child({ component: 'rotation' }),
        intervalMs: ROTATION_CHECK_INTERVAL_MS,
        metrics,
        mayCreate: (realm, use, activateAt) => cluster.mayCreate(realm, use, activateAt),
      });
      await this.#startComponent(rotation);
      const root = {
        name: 'admin',
        hash: hashOperatorToken(admin.token),
        scopes: ['admin', 'backend', 'trust'],
      } as const;
      const auth = new OperatorAuth([root], { refresh: () => registered.fresh() });
      const registry: Registry = new Registry({
        log: new RegistrationLog({
          getOrCreate: async (key, candidate) => (await agreement.getOrCreate(key, candidate)).value!,
          read: async (key) => (await agreement.read(key)).value,
        }),
        config,
        node: config.name,
        store,
        logger: log.child({ component: 'registrations' }),
        pollMs: REGISTRATIONS_POLL_MS,
        announce: () => cluster.heartbeatNow(),
      });
      // reads the version this node served before: until it caught up again, it serves no registration
      await registry.load();
      const getOrCreate = async (key: string, candidate: Uint8Array) =>
        (await agreement.getOrCreate(key, candidate)).value;
      const getOrCreateExpiring = async (key: string, candidate: Uint8Array, expiresAt: number) =>
        (await agreement.getOrCreate(key, candidate, { expiresAt })).value;
      const slowHash = new SlowHashPool();
      // every outbound fetch (POPs, IDP and client key sets) through one capped fetcher
      const fetcher = new CappedFetcher();
      await this.#startComponent(slowHash);
      const revocations = new Revocations({
        register: agreement,
        clock,
        publish: (jti, exp) => cluster.publishRevocation(jti, exp),
      });
      cluster.onRevocation((jti, exp) => revocations.heard(jti, exp));
      const shared: SharedParts = {
        register: agreement,
        keyring,
        clock,
        getOrCreate,
        getOrCreateExpiring,
        recordOnce: recordOnceWith(getOrCreateExpiring),
        revocations,
        jwks: new JwksView({ keyring, clock, maxAgeMs: config.jwks.maxAgeMs }),
        pops: new PopKeys(clock, { fetcher }),
        fetcher,
        slowHash,
        sealer,
        ...(audit ? { audit } : {}),
        throttle: new AuthThrottle(
          audit
            ? {
                onRefused: (address, client) =>
                  void audit.record({
                    event: 'client:throttled',
                    address,
                    ...(client !== undefined ? { client } : {}),
                  }),
              }
            : {},
        ),
      };
      const registered: RegisteredServices = new RegisteredServices(config, shared, registry, auth, root);
      this.#http = new HttpServer({
        config,
        nodeId: identity.nodeId,
        clock,
        log: log.child({ component: 'http' }),
        keyring,
        rotation,
        auth,
        jwks: shared.jwks,
        decryptor: new PopDecryptor({ keyring }),
        publication: (k) => cluster.publication(k),
        cluster,
        agreement,
        snapshots,
        secretServer: registered.secretServer,
        tokens: registered.tokens,
        registry,
        throttle: shared.throttle,
        isReady: () => this.#ready,
        metrics,
        ...(audit ? { audit } : {}),
        ...(this.#o.faults ? { faults: this.#o.faults } : {}),
        managementKeys,
      });
      await this.#startComponent(this.#http);
      // the keys are served from here on; the libp2p host (the slowest part to load) joins the cluster next
      this.#ready = true;
      await this.#startComponent(cluster);
      await agreement.start(cluster.agreementCluster());
      await snapshots.attach(cluster.agreementCluster());
      registry.start();
      this.#started.push({ start: async () => undefined, stop: async () => registry.stop() });
      // a node that stopped in the middle of a re-seal finishes it
      heldKeys.resume();
      this.#started.push({ start: async () => undefined, stop: () => agreement.stop() });
      log.child({ component: 'node' }).info(
        {
          nodeId: identity.nodeId,
          url: this.#http.url,
          peerId: cluster.peerId,
          p2p: cluster.listenAddrs,
          keys: keyring.list().length,
          newDataDir: identity.created,
        },
        'node ready',
      );
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops every started component in reverse order. Idempotent. */
  async stop(): Promise<void> {
    this.#ready = false;
    while (this.#started.length > 0) {
      const component = this.#started.pop()!;
      try {
        await component.stop();
      } catch (err) {
        this.#o.log.error({ component: 'node', err }, 'component failed to stop');
      }
    }
  }

  async #startComponent(component: Startable): Promise<void> {
    await component.start();
    this.#started.push(component);
  }
}
