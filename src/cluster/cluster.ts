/**
 * The cluster service of one node: the libp2p host, seed dialling, heartbeats and membership, key gossip, key
 * sync, and the two leaderless decisions the keyring and the rotation schedule ask of it (who creates a key, and
 * whether a key may be activated). It moves keyring records; it never decides their lifecycle.
 *
 * Topics (per cluster, versioned): `keymesh/<clusterId>/keys/1` and `keymesh/<clusterId>/members/1`. Protocol:
 * `/keymesh/<clusterId>/sync/1`. Every incoming message is checked by a validator first; anything malformed is
 * rejected (gossipsub lowers the sender's score; see `topic-validators.ts`) or, on the sync protocol, earns the sender a strike.
 */
import { createHash } from 'node:crypto';
import type { PeerId } from '@libp2p/interface';
import type { Message } from '@libp2p/gossipsub';
import { monotonicClock, type Clock } from '../clock.js';
import { listenError } from '../errors.js';
import type { Config } from '../config/types.js';
import type { ManagementKey } from '../crypto/management-key.js';
import type { ClusterNetwork } from './network-guard.js';
import type { Sealer } from '../crypto/sealer.js';
import type { KeyEntry } from '../keyring/key-entry.js';
import type { KeyUse } from '../keyring/key-record.js';
import type { KeyChange, Keyring } from '../keyring/keyring.js';
import type { Logger } from '../log.js';
import type { ClusterMetrics, GossipDirection, GossipTopic } from '../metrics/recorder.js';
import type { Startable } from '../startable.js';
import type { SealedStore } from '../storage/sealed-store.js';
import { ConnectionWatchdog } from './connection-watchdog.js';
import { timingFor } from '../timing.js';
import type { ClusterDelegate } from './delegate.js';
import { OwnGenerationProofs, verifyGenerationProof, type GenerationProof } from './generation-proof.js';
import type { Host } from './host.js';
import type { KeySync } from './key-sync.js';
import { Membership, type MemberState } from './membership.js';
import { encodeMessage, FULL_HEARTBEAT_EVERY, MAX_KIDS } from './messages.js';
import { Penalties } from './penalties.js';
import { MemberLinks } from './member-links.js';
import { LeaderlessDecisions } from './placement.js';
import type { SeedDialer } from './seed-dialer.js';
import type { AgreementCluster } from '../replication/agreement.js';
import { TopicValidators } from './topic-validators.js';
import { sealRecord } from './wire-records.js';

/** One member as `GET /v1/cluster` shows it. */
export interface MemberView {
  nodeId: string;
  name: string;
  httpUrl: string;
  peerId: string | undefined;
  state: MemberState;
  self: boolean;
  lastHeartbeatAt: string | undefined;
  incarnation: number;
  digest: string;
  publishedKeys: number;
  /** The registrations-log version the member serves, as its last heartbeat said. */
  registrationsVersion?: number | undefined;
}

/** What the cluster service needs. */
export interface ClusterOptions {
  readonly config: Config;
  readonly nodeId: string;
  /** The management keys the node holds when the host starts (the private network offers each). */
  readonly managementKeys: () => readonly ManagementKey[];
  readonly sealer: Sealer;
  readonly store: SealedStore;
  readonly keyring: Keyring;
  readonly clock: Clock;
  /** The clock of durations and heartbeat ages; never steps. Default is `monotonicClock`. */
  readonly monotonic?: Clock;
  readonly log: Logger;
  /** This node's HTTP base URL (known once HTTP listens). */
  readonly httpUrl: () => string;
  /** Peers an injected partition cuts off (fault injection only). */
  readonly isBlocked?: (peerId: string) => boolean;
  /** Where gossip messages and sync pulls are counted; none by default. */
  readonly metrics?: ClusterMetrics;
  /** The registrations-log version this node serves (sent on heartbeats) and where members' versions go. */
  readonly registrations?: { version(): number; heard(version: number): void };
}

/** The cluster side of one node. */
export class Cluster implements Startable {
  readonly #o: ClusterOptions;
  readonly #keysTopic: string;
  readonly #membersTopic: string;
  readonly #revocationsTopic: string;
  /** Each topic's short name, for metrics. */
  readonly #topicNames: ReadonlyMap<string, GossipTopic>;
  #onRevocation: ((jti: string, exp: number) => void) | undefined;
  readonly #penalties: Penalties;
  /** What the topic validators decoded, so the message handler does not decode (and open) it again. */
  #validators: TopicValidators | undefined;
  #membership: Membership | undefined;
  #decisions: LeaderlessDecisions | undefined;
  #host: Host | undefined;
  #network: ClusterNetwork | undefined;
  #sync: KeySync | undefined;
  #seeds: SeedDialer | undefined;
  #participant: ClusterDelegate | undefined;
  #proofs: OwnGenerationProofs | undefined;
  /** Per member, the highest generation proof verified so far (only higher ones are verified again). */
  readonly #proven = new Map<string, number>();
  #heartbeat: NodeJS.Timeout | undefined;
  #incarnation = 0;
  #links: MemberLinks | undefined;
  #beats = 0;
  #lastKidsDigest = '';
  readonly #onKeyChange = (change: KeyChange) => this.#announce(change);

  constructor(options: ClusterOptions) {
    this.#o = options;
    const id = options.config.clusterId;
    this.#keysTopic = `keymesh/${id}/keys/1`;
    this.#membersTopic = `keymesh/${id}/members/1`;
    this.#revocationsTopic = `keymesh/${id}/revocations/1`;
    this.#topicNames = new Map([
      [this.#keysTopic, 'keys'],
      [this.#membersTopic, 'members'],
      [this.#revocationsTopic, 'revocations'],
    ]);
    // strikes and bans are durations: the monotonic clock, never the wall clock
    this.#penalties = new Penalties(options.monotonic ?? monotonicClock);
  }

  /** The libp2p peer id; undefined until the host started. */
  get peerId(): string | undefined {
    return this.#host?.peerId.toString();
  }

  /** The private network (its keys change during a management-key rotation); undefined until the host started. */
  get network(): ClusterNetwork | undefined {
    return this.#network;
  }

  /** A management key was removed: its network key is no longer offered and its connections are replaced (`ClusterNetwork.retire`). */
  retireNetworkEpoch(epoch: number): void {
    if (this.#host) this.#network?.retire(epoch, this.#host);
  }

  /** The libp2p listen addresses; empty until the host started. */
  get listenAddrs(): string[] {
    return this.#host?.getMultiaddrs().map(String) ?? [];
  }

  /**
   * Loads the member list and installs the activation gate, without touching the network, so that the keyring
   * and the rotation schedule follow the cluster's rules from the first instant (the HTTP API may serve before
   * the libp2p host is up).
   */
  async prepare(): Promise<void> {
    if (this.#membership) return;
    const { config, store, keyring, log } = this.#o;
    const membership = new Membership({
      self: { nodeId: this.#o.nodeId, name: config.name, httpUrl: '' },
      // failure detection times on a clock that never steps; the node's wall clock (which may) is for keys only
      store,
      clock: this.#o.monotonic ?? monotonicClock,
      log: log.child({ component: 'membership' }),
      timing: { suspectAfterMs: config.membership.suspectAfterMs, deadAfterMs: config.membership.deadAfterMs },
    });
    await membership.load();
    this.#membership = membership;
    this.#incarnation = await this.#bumpIncarnation();
    membership.updateSelf({ incarnation: this.#incarnation });
    const decisions = new LeaderlessDecisions({
      membership,
      keyring,
      clock: this.#o.clock,
      nodeId: this.#o.nodeId,
      mapMembers: () => this.#participant?.mapMembers(),
    });
    this.#decisions = decisions;
    keyring.useActivationGate((key) => decisions.gate(key));
  }

  /** Starts the libp2p host (loaded only now: it is the slowest part of a start), gossip, sync and seeds. */
  async start(): Promise<void> {
    await this.prepare();
    const { config, store, keyring, log } = this.#o;
    const membership = this.#membership!;
    const [{ createHost }, { loadPeerIdentity }, { KeySync }, { SeedDialer }, { ClusterNetwork }] = await Promise.all([
      import('./host.js'),
      import('./identity.js'),
      import('./key-sync.js'),
      import('./seed-dialer.js'),
      import('./network-guard.js'),
    ]);
    const { multiaddr } = await import('@multiformats/multiaddr');
    const privateKey = await loadPeerIdentity(store);
    this.#proofs = new OwnGenerationProofs({ privateKey, clusterId: config.clusterId, nodeId: this.#o.nodeId });
    this.#network = new ClusterNetwork({
      keys: this.#o.managementKeys(),
      clusterId: config.clusterId,
      log: log.child({ component: 'p2p' }),
    });
    const host = await createHost({
      privateKey,
      network: this.#network,
      listen: config.p2p,
      isBanned: (peer) => this.#penalties.isBanned(peer) || (this.#o.isBlocked?.(peer) ?? false),
      log: log.child({ component: 'p2p' }),
    });
    this.#host = host;
    this.#links = new MemberLinks(host, multiaddr, log.child({ component: 'members' }));
    this.#sync = new KeySync({
      host,
      keyring,
      sealer: this.#o.sealer,
      penalties: this.#penalties,
      nodeId: this.#o.nodeId,
      protocol: `/keymesh/${config.clusterId}/sync/1`,
      log: log.child({ component: 'sync' }),
      metrics: this.#o.metrics,
      identify: (peer) => membership.identify(peer),
    });
    try {
      await host.start();
    } catch (err) {
      await Promise.resolve(host.stop()).catch(() => undefined);
      if ((err as Error).name === 'UnsupportedListenAddressesError')
        throw listenError('p2p', config.p2p.host, config.p2p.port, err);
      throw err;
    }
    await this.#sync.register();

    const pubsub = host.services.pubsub;
    const validators = new TopicValidators({
      sealer: this.#o.sealer,
      log: this.#o.log,
      impostor: (nodeId, signer) => this.#membership?.impostor(nodeId, signer) ?? false,
      // bound to the node it names, and a member of the map once there is one
      mayRevoke: (from, signer) =>
        this.#membership?.identify(signer) === from && (this.#participant?.mapMembers()?.has(from) ?? true),
      rejected: (topic) => this.#count(topic, 'rejected'),
    });
    this.#validators = validators;
    pubsub.topicValidators.set(this.#keysTopic, (_peer, msg) => validators.key(msg));
    pubsub.topicValidators.set(this.#membersTopic, (_peer, msg) => validators.heartbeat(msg));
    pubsub.topicValidators.set(this.#revocationsTopic, (_peer, msg) => validators.revocation(msg));
    pubsub.addEventListener('message', (evt) => this.#onMessage(evt.detail));
    pubsub.subscribe(this.#keysTopic);
    pubsub.subscribe(this.#membersTopic);
    pubsub.subscribe(this.#revocationsTopic);
    host.addEventListener('peer:connect', (evt) => this.#sync?.pullSoon(evt.detail));
    host.addEventListener('peer:disconnect', (evt) => this.#membership?.disconnected(evt.detail.toString()));

    keyring.on('keys:changed', this.#onKeyChange);
    membership.updateSelf({ peerId: host.peerId.toString() });

    this.#seeds = new SeedDialer({ host, seeds: config.seeds, log: log.child({ component: 'seeds' }) });
    await this.#seeds.start();
    this.#heartbeat = setInterval(() => this.#sendHeartbeat(), config.membership.heartbeatIntervalMs);
    this.#heartbeat.unref();
    log.info({ peerId: host.peerId.toString(), listen: this.listenAddrs, seeds: config.seeds }, 'cluster started');
  }

  async stop(): Promise<void> {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#o.keyring.off('keys:changed', this.#onKeyChange);
    this.#o.keyring.useActivationGate(() => true);
    await this.#seeds?.stop();
    const host = this.#host;
    this.#host = undefined;
    this.#links = undefined;
    await host?.stop();
  }

  /** Lets the agreement role name its map in heartbeats and hear what peers' heartbeats name. */
  attach(participant: ClusterDelegate): void {
    this.#participant = participant;
  }

  /** What the agreement role needs of the network: the host, live members, peer ids, penalties. */
  agreementCluster(): AgreementCluster {
    const host = this.#host;
    const membership = this.#membership;
    if (!host || !membership) throw new Error('the cluster is not started');
    const watchdog = new ConnectionWatchdog({
      host,
      log: this.#o.log.child({ component: 'watchdog' }),
      timeoutMs: timingFor(this.#o.config.timingProfile).probeTimeoutMs,
    });
    return {
      host,
      liveMembers: () =>
        membership
          .all()
          .filter((m) => !m.self && membership.state(m) === 'alive')
          .map((m) => ({ nodeId: m.nodeId, name: m.name, map: m.map })),
      peerOf: (nodeId) => membership.all().find((m) => m.nodeId === nodeId)?.peerId,
      identify: (peerId) => membership.identify(peerId),
      strike: (peerId, err) => {
        this.#o.log.warn({ peer: peerId, err: (err as Error).message }, 'malformed request rejected');
        this.#penalties.strike(peerId);
      },
      isOwnProof: (proof) => this.#proofs?.isOwn(proof) ?? Promise.resolve(false),
      probe: (nodeId) => {
        const peer = membership.all().find((m) => m.nodeId === nodeId)?.peerId;
        if (peer) watchdog.probe(peer);
      },
    };
  }

  /** Closes every connection to these libp2p peers (an injected partition; the gater refuses new ones). */
  async hangUp(peerIds: readonly string[]): Promise<void> {
    const host = this.#host;
    if (!host) return;
    const { peerIdFromString } = await import('@libp2p/peer-id');
    await Promise.all(peerIds.map(async (id) => host.hangUp(peerIdFromString(id)).catch(() => undefined)));
  }

  /** The rotation schedule's question: should this node create the missing key active from `activateAt`? */
  mayCreate(realm: string, use: KeyUse, activateAt: number): boolean {
    return this.#decisions?.mayCreate(realm, use, activateAt) ?? true;
  }

  /** On how many of how many members `key` is published. */
  publication(key: KeyEntry): { nodes: number; of: number } {
    return this.#decisions?.publication(key) ?? { nodes: this.#o.keyring.isPublished(key) ? 1 : 0, of: 1 };
  }

  /** Every member, for `GET /v1/cluster`. */
  members(): MemberView[] {
    const membership = this.#membership;
    if (!membership) return [];
    this.#refreshSelf();
    return membership.all().map((m) => ({
      nodeId: m.nodeId,
      name: m.name,
      httpUrl: m.httpUrl,
      peerId: m.peerId,
      state: membership.state(m),
      self: m.self,
      lastHeartbeatAt: m.self
        ? new Date(this.#o.clock.now()).toISOString()
        : m.lastHeartbeatAt === undefined
          ? undefined
          : new Date(m.lastHeartbeatAt).toISOString(),
      incarnation: m.incarnation,
      digest: m.digest,
      publishedKeys: m.kids.size,
      registrationsVersion: m.self ? this.#o.registrations?.version() : m.registrations,
    }));
  }

  #announce(change: KeyChange): void {
    if (change.origin !== 'local' || change.kind === 'expired') return;
    this.#publish(
      this.#keysTopic,
      encodeMessage({
        t: 'key',
        v: 1,
        from: this.#o.nodeId,
        kid: change.key.kid,
        sealed: sealRecord(this.#o.sealer, change.key),
      }),
    );
    this.#sendHeartbeat();
  }

  /** Sends a heartbeat now (members learn of a new registrations version without waiting for the next one). */
  heartbeatNow(): void {
    this.#sendHeartbeat();
  }

  #sendHeartbeat(): void {
    if (!this.#host) return;
    this.#refreshSelf();
    const self = this.#membership!.self;
    const kids = [...self.kids].sort().slice(0, MAX_KIDS);
    const kidsDigest = createHash('sha256').update(kids.join(',')).digest('base64url');
    const full = kidsDigest !== this.#lastKidsDigest || this.#beats % FULL_HEARTBEAT_EVERY === 0;
    this.#beats += 1;
    this.#lastKidsDigest = kidsDigest;
    this.#publish(
      this.#membersTopic,
      encodeMessage({
        t: 'heartbeat',
        v: 1,
        from: this.#o.nodeId,
        name: self.name,
        httpUrl: self.httpUrl,
        addrs: this.listenAddrs.slice(0, 8),
        incarnation: self.incarnation,
        digest: self.digest,
        kidsDigest,
        ...(full ? { kids } : {}),
        sentAt: (this.#o.monotonic ?? monotonicClock).now(),
        seq: this.#beats,
        ...(this.#participant?.mapSummary() ? { map: this.#participant.mapSummary() } : {}),
        ...(this.#participant ? this.#generationFields(this.#participant.generation()) : {}),
        ...(this.#o.registrations ? { registrations: this.#o.registrations.version() } : {}),
      }),
    );
  }

  #refreshSelf(): void {
    const keyring = this.#o.keyring;
    const kids = new Set(
      keyring
        .list()
        .filter((k) => keyring.isPublished(k))
        .map((k) => k.kid),
    );
    let httpUrl = '';
    try {
      httpUrl = this.#o.httpUrl();
    } catch {
      // HTTP is not listening yet
    }
    this.#membership?.updateSelf({ digest: keyring.digest(), kids, httpUrl });
  }

  #publish(topic: string, data: Uint8Array): void {
    const host = this.#host;
    // publishing to a topic nobody subscribes to only loses the message; sync covers what gossip missed
    if (!host || host.services.pubsub.getSubscribers(topic).length === 0) return;
    this.#count(topic, 'out');
    host.services.pubsub
      .publish(topic, data)
      .catch((err: unknown) => this.#o.log.debug({ topic, err: (err as Error).message }, 'publish failed'));
  }

  /** Tells the other nodes that the token `jti` (expiring at `exp`, seconds) was revoked. */
  publishRevocation(jti: string, exp: number): void {
    this.#publish(this.#revocationsTopic, encodeMessage({ t: 'revocation', v: 1, from: this.#o.nodeId, jti, exp }));
  }

  /** Where revocations other nodes publish go. */
  onRevocation(handler: (jti: string, exp: number) => void): void {
    this.#onRevocation = handler;
  }

  #onMessage(msg: Message): void {
    const from = msg.type === 'signed' ? msg.from : undefined;
    if (!from) return;
    this.#count(msg.topic, 'in');
    if (msg.topic === this.#revocationsTopic) {
      const m = this.#validators!.revocationOf(msg.data);
      this.#onRevocation?.(m.jti, m.exp);
      return;
    }
    if (msg.topic === this.#keysTopic) {
      const record = this.#validators!.keyRecord(msg.data);
      this.#o.keyring
        .merge(record)
        .catch((err: unknown) => this.#o.log.error({ err }, 'could not store a gossiped key'));
    } else if (msg.topic === this.#membersTopic) {
      const hb = this.#validators!.heartbeatOf(msg.data);
      // the agreement role hears only heartbeats newer than the last (gossip may deliver old ones late), in order
      this.#membership
        ?.observe(hb, from.toString(), () => {
          this.#participant?.observePeer({ nodeId: hb.from, name: hb.name }, hb.map, hb.generation);
          if (hb.generationProof) void this.#checkProof(hb.from, from as PeerId, hb.generationProof);
        })
        .catch((err: unknown) => this.#o.log.error({ err }, 'could not record a heartbeat'));
      if (hb.digest !== this.#o.keyring.digest()) this.#sync?.pullSoon(from as PeerId);
      if (hb.registrations !== undefined) this.#o.registrations?.heard(hb.registrations);
      this.#links?.heard(from as PeerId, hb.addrs);
    }
  }

  /** A heartbeat's generation and the latest proof of it; the generation is signed anew as it grows. */
  #generationFields(generation: number): { generation: number; generationProof?: GenerationProof } {
    this.#proofs?.note(generation);
    const proof = this.#proofs?.latest();
    return { generation, ...(proof ? { generationProof: proof } : {}) };
  }

  /** Verifies a member's proof against the key of the peer that sent (and signed) its heartbeat, if it is new. */
  async #checkProof(nodeId: string, peer: PeerId, proof: GenerationProof): Promise<void> {
    if (proof.g <= (this.#proven.get(nodeId) ?? -1) || !peer.publicKey) return;
    if (!(await verifyGenerationProof(peer.publicKey, this.#o.config.clusterId, nodeId, proof))) {
      this.#o.log.warn(
        { node: nodeId, peer: peer.toString() },
        'a heartbeat carried a generation proof that does not verify',
      );
      return;
    }
    if (proof.g <= (this.#proven.get(nodeId) ?? -1)) return;
    this.#proven.set(nodeId, proof.g);
    this.#participant?.observeProof?.(nodeId, proof);
  }

  /** Counts one message on one of this cluster's topics (others are not ours to count). */
  #count(topic: string, direction: GossipDirection): void {
    const name = this.#topicNames.get(topic);
    if (name) this.#o.metrics?.gossip(name, direction);
  }

  async #bumpIncarnation(): Promise<number> {
    const stored = await this.#o.store.get('node/incarnation');
    const next = (stored && stored.length === 8 ? Number(stored.readBigUInt64BE()) : 0) + 1;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(next));
    await this.#o.store.put('node/incarnation', b, { sync: true });
    return next;
  }
}
