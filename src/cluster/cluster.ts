/**
 * The cluster service of one node: the libp2p host, seed dialling, heartbeats and membership, key gossip, key
 * sync, and the two leaderless decisions the keyring and the rotation schedule ask of it (who creates a key, and
 * whether a key may be activated). It moves keyring records; it never decides their lifecycle.
 *
 * Topics (per cluster, versioned): keys, members and revocations (`topics.ts`). Protocol:
 * `/keymesh/<clusterId>/sync/1`. Every incoming message is checked by a validator first; anything malformed is
 * rejected (gossipsub lowers the sender's score; see `topic-validators.ts`) or, on the sync protocol, earns the sender a strike.
 */
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
import type { ClusterMetrics } from '../metrics/recorder.js';
import type { Startable } from '../startable.js';
import type { SealedStore } from '../storage/sealed-store.js';
import { timingFor } from '../timing.js';
import { agreementLink } from './agreement-link.js';
import type { ClusterDelegate } from './delegate.js';
import { OwnGenerationProofs } from './generation-proof.js';
import { HeartbeatComposer, refreshSelf } from './heartbeat-composer.js';
import type { Host } from './host.js';
import { bumpIncarnation } from './incarnation.js';
import type { KeySync } from './key-sync.js';
import { memberViews, type MemberView } from './member-view.js';
import { Membership } from './membership.js';
import { encodeMessage } from './messages.js';
import { Penalties } from './penalties.js';
import { PeerProofs } from './peer-proofs.js';
import { MemberLinks } from './member-links.js';
import { LeaderlessDecisions } from './placement.js';
import type { SeedDialer } from './seed-dialer.js';
import type { AgreementCluster } from '../replication/agreement.js';
import { TopicValidators } from './topic-validators.js';
import { ClusterTopics } from './topics.js';
import { sealRecord } from './wire-records.js';

export type { MemberView } from './member-view.js';

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
  readonly #topics: ClusterTopics;
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
  readonly #peerProofs: PeerProofs;
  readonly #composer: HeartbeatComposer;
  #heartbeat: NodeJS.Timeout | undefined;
  #incarnation = 0;
  #links: MemberLinks | undefined;
  readonly #onKeyChange = (change: KeyChange) => this.#announce(change);

  constructor(options: ClusterOptions) {
    this.#o = options;
    const id = options.config.clusterId;
    this.#topics = new ClusterTopics(id, options.metrics);
    // strikes and bans are durations: the monotonic clock, never the wall clock
    this.#penalties = new Penalties(options.monotonic ?? monotonicClock);
    this.#peerProofs = new PeerProofs({ clusterId: id, log: options.log });
    this.#composer = new HeartbeatComposer({
      nodeId: options.nodeId,
      monotonic: options.monotonic ?? monotonicClock,
      participant: () => this.#participant,
      proofs: () => this.#proofs,
      registrations: options.registrations,
    });
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
    this.#incarnation = await bumpIncarnation(store);
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
      rejected: (topic) => this.#topics.count(topic, 'rejected'),
    });
    this.#validators = validators;
    this.#topics.subscribe(pubsub, validators, (msg) => this.#onMessage(msg));
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
    return agreementLink({
      host,
      membership,
      penalties: this.#penalties,
      proofs: () => this.#proofs,
      log: this.#o.log,
      probeTimeoutMs: timingFor(this.#o.config.timingProfile).probeTimeoutMs,
    });
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
    refreshSelf(this.#o.keyring, membership, this.#o.httpUrl);
    return memberViews(membership, this.#o.clock, this.#o.registrations?.version());
  }

  #announce(change: KeyChange): void {
    if (change.origin !== 'local' || change.kind === 'expired') return;
    this.#publish(
      this.#topics.keys,
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
    refreshSelf(this.#o.keyring, this.#membership, this.#o.httpUrl);
    this.#publish(this.#topics.members, this.#composer.next(this.#membership!.self, this.listenAddrs));
  }

  #publish(topic: string, data: Uint8Array): void {
    const host = this.#host;
    // publishing to a topic nobody subscribes to only loses the message; sync covers what gossip missed
    if (!host || host.services.pubsub.getSubscribers(topic).length === 0) return;
    this.#topics.count(topic, 'out');
    host.services.pubsub
      .publish(topic, data)
      .catch((err: unknown) => this.#o.log.debug({ topic, err: (err as Error).message }, 'publish failed'));
  }

  /** Tells the other nodes that the token `jti` (expiring at `exp`, seconds) was revoked. */
  publishRevocation(jti: string, exp: number): void {
    this.#publish(this.#topics.revocations, encodeMessage({ t: 'revocation', v: 1, from: this.#o.nodeId, jti, exp }));
  }

  /** Where revocations other nodes publish go. */
  onRevocation(handler: (jti: string, exp: number) => void): void {
    this.#onRevocation = handler;
  }

  #onMessage(msg: Message): void {
    const from = msg.type === 'signed' ? msg.from : undefined;
    if (!from) return;
    this.#topics.count(msg.topic, 'in');
    if (msg.topic === this.#topics.revocations) {
      const m = this.#validators!.revocationOf(msg.data);
      this.#onRevocation?.(m.jti, m.exp);
      return;
    }
    if (msg.topic === this.#topics.keys) {
      const record = this.#validators!.keyRecord(msg.data);
      this.#o.keyring
        .merge(record)
        .catch((err: unknown) => this.#o.log.error({ err }, 'could not store a gossiped key'));
    } else if (msg.topic === this.#topics.members) {
      const hb = this.#validators!.heartbeatOf(msg.data);
      // the agreement role hears only heartbeats newer than the last (gossip may deliver old ones late), in order
      this.#membership
        ?.observe(hb, from.toString(), () => {
          this.#participant?.observePeer({ nodeId: hb.from, name: hb.name }, hb.map, hb.generation);
          if (hb.generationProof)
            void this.#peerProofs.check(hb.from, from as PeerId, hb.generationProof, (nodeId, proof) =>
              this.#participant?.observeProof?.(nodeId, proof),
            );
        })
        .catch((err: unknown) => this.#o.log.error({ err }, 'could not record a heartbeat'));
      if (hb.digest !== this.#o.keyring.digest()) this.#sync?.pullSoon(from as PeerId);
      if (hb.registrations !== undefined) this.#o.registrations?.heard(hb.registrations);
      this.#links?.heard(from as PeerId, hb.addrs);
    }
  }
}
