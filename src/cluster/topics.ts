/**
 * The cluster's gossip topics, one set per cluster id and versioned: `keymesh/<clusterId>/keys/1` (sealed key
 * records), `keymesh/<clusterId>/members/1` (heartbeats) and `keymesh/<clusterId>/revocations/1` (revoked tokens).
 * Each has a short name for metrics; messages on other topics are not this cluster's and are not counted.
 */
import type { GossipSub, Message } from '@libp2p/gossipsub';
import type { ClusterMetrics, GossipDirection, GossipTopic } from '../metrics/recorder.js';
import type { TopicValidators } from './topic-validators.js';

export class ClusterTopics {
  readonly keys: string;
  readonly members: string;
  readonly revocations: string;
  readonly #names: ReadonlyMap<string, GossipTopic>;
  readonly #metrics: ClusterMetrics | undefined;

  constructor(clusterId: string, metrics?: ClusterMetrics) {
    this.keys = `keymesh/${clusterId}/keys/1`;
    this.members = `keymesh/${clusterId}/members/1`;
    this.revocations = `keymesh/${clusterId}/revocations/1`;
    this.#names = new Map([
      [this.keys, 'keys'],
      [this.members, 'members'],
      [this.revocations, 'revocations'],
    ]);
    this.#metrics = metrics;
  }

  /** Every topic of the cluster. */
  get all(): readonly string[] {
    return [this.keys, this.members, this.revocations];
  }

  /** Installs each topic's validator, hands accepted messages to `onMessage`, and subscribes to every topic. */
  subscribe(pubsub: GossipSub, validators: TopicValidators, onMessage: (msg: Message) => void): void {
    pubsub.topicValidators.set(this.keys, (_peer, msg) => validators.key(msg));
    pubsub.topicValidators.set(this.members, (_peer, msg) => validators.heartbeat(msg));
    pubsub.topicValidators.set(this.revocations, (_peer, msg) => validators.revocation(msg));
    pubsub.addEventListener('message', (evt) => onMessage(evt.detail));
    for (const topic of this.all) pubsub.subscribe(topic);
  }

  /** Counts one message on one of this cluster's topics (others are not ours to count). */
  count(topic: string, direction: GossipDirection): void {
    const name = this.#names.get(topic);
    if (name) this.#metrics?.gossip(name, direction);
  }
}
