/**
 * Membership: who is in the cluster and whether they answer.
 *
 * Every node publishes a heartbeat every `heartbeatIntervalMs`. A member is **alive** while its last heartbeat is
 * younger than `suspectAfterMs`, **suspect** until `deadAfterMs`, then **dead**. A lost connection makes a member
 * suspect at once (its next heartbeat clears that), so a killed process is noticed by its peers' connection loss
 * and declared dead within `deadAfterMs` of its last heartbeat. The failure detector only labels members: it
 * never removes one. The member list (every member ever seen and not removed by an operator) and each member's
 * last published kids are persisted, so a node that restarts alone still knows the cluster it belongs to.
 *
 * Time here is local receipt time, never the sender's clock.
 *
 * **Who a member is.** A member's node id is bound to the libp2p peer id that signed the first heartbeat heard
 * from it (gossipsub signs every message with the sender's peer key), and the binding is persisted with the member
 * record. A heartbeat that names a bound node id but is signed by another peer, or that names another node id than
 * the one its signer is bound to, is an impostor's: it is refused and changes nothing. `identify` answers which
 * node a peer is, for the register and coordination protocols, which trust nothing else a message claims.
 */
import { EventEmitter } from 'node:events';
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { SealedStore } from '../storage/sealed-store.js';
import type { Heartbeat } from './messages.js';

const MEMBER_PREFIX = 'member/';

const storedMemberSchema = z.object({
  v: z.literal(1),
  nodeId: z.string().regex(/^[0-9a-f]{16}$/),
  name: z.string().max(64),
  httpUrl: z.string().max(256),
  kids: z.array(z.string().max(86)).max(4096),
  /** The libp2p peer id the member is bound to (absent in records written before bindings were kept). */
  peerId: z.string().max(128).optional(),
});

/** A member's health as this node sees it. */
export type MemberState = 'alive' | 'suspect' | 'dead';

/** What this node knows about one member. */
export interface Member {
  readonly nodeId: string;
  name: string;
  httpUrl: string;
  peerId: string | undefined;
  incarnation: number;
  digest: string;
  kids: ReadonlySet<string>;
  /** Local time of the last heartbeat; undefined when not heard since this node started. */
  lastHeartbeatAt: number | undefined;
  /** Set when the connection to the member was lost after its last heartbeat. */
  disconnectedAt: number | undefined;
  /** The cluster map the member's last heartbeat named. */
  map?: { epoch: number; id: string } | undefined;
  /** The registrations-log version the member's last heartbeat named. */
  registrations?: number | undefined;
  readonly self: boolean;
}

/** Failure-detector timing. */
export interface MembershipTiming {
  readonly suspectAfterMs: number;
  readonly deadAfterMs: number;
}

/** Events of the membership. */
export interface MembershipEvents {
  'member:joined': [member: Member];
  'member:heartbeat': [member: Member];
}

/** The member list of one node. */
export class Membership extends EventEmitter<MembershipEvents> {
  readonly #members = new Map<string, Member>();
  readonly #store: SealedStore;
  readonly #clock: Clock;
  readonly #timing: MembershipTiming;
  readonly #log: Logger;
  readonly #self: Member;
  /** Per member: the smallest (receipt time − sentAt) seen in its current incarnation. */
  readonly #offsets = new Map<string, number>();
  /** Per member: the newest `sentAt` seen in its current incarnation. */
  readonly #lastSentAt = new Map<string, number>();
  /** Per member: the newest heartbeat sequence number seen in its current incarnation. */
  readonly #lastSeq = new Map<string, number>();

  constructor(options: {
    self: { nodeId: string; name: string; httpUrl: string };
    store: SealedStore;
    clock: Clock;
    timing: MembershipTiming;
    log: Logger;
  }) {
    super();
    this.#store = options.store;
    this.#clock = options.clock;
    this.#timing = options.timing;
    this.#log = options.log;
    this.#self = {
      ...options.self,
      peerId: undefined,
      incarnation: 0,
      digest: '',
      kids: new Set(),
      lastHeartbeatAt: undefined,
      disconnectedAt: undefined,
      self: true,
    };
    this.#members.set(this.#self.nodeId, this.#self);
  }

  /** Loads the persisted member list. */
  async load(): Promise<void> {
    for await (const entry of this.#store.scan(MEMBER_PREFIX)) {
      if (!('value' in entry)) {
        this.#log.error({ record: entry.key }, entry.error.message);
        continue;
      }
      const parsed = storedMemberSchema.safeParse(unpack(entry.value));
      if (!parsed.success) {
        this.#log.error({ record: entry.key }, 'stored member record is malformed; skipped');
        continue;
      }
      const m = parsed.data;
      if (m.nodeId === this.#self.nodeId) continue;
      this.#members.set(m.nodeId, {
        nodeId: m.nodeId,
        name: m.name,
        httpUrl: m.httpUrl,
        peerId: m.peerId,
        incarnation: 0,
        digest: '',
        kids: new Set(m.kids),
        lastHeartbeatAt: undefined,
        disconnectedAt: undefined,
        self: false,
      });
    }
  }

  /** This node as a member. */
  get self(): Member {
    return this.#self;
  }

  /** Updates this node's own entry (what its next heartbeat will say). */
  updateSelf(fields: {
    incarnation?: number;
    digest?: string;
    kids?: ReadonlySet<string>;
    peerId?: string;
    httpUrl?: string;
  }): void {
    Object.assign(this.#self, fields);
  }

  /**
   * Applies a heartbeat received from `peerId`; resolves true when it was newer than the last one applied.
   * `onFresh` runs as soon as that is decided, before the member record is written: heartbeats are applied in
   * the order they arrive, and anything acting on them (the agreement role compares register generations) must
   * see them in that order too, which a caller waiting for the write would not when an older heartbeat's write
   * is slower than a newer one's.
   */
  async observe(hb: Heartbeat, peerId: string, onFresh?: () => void): Promise<boolean> {
    if (hb.from === this.#self.nodeId) return false;
    if (this.impostor(hb.from, peerId)) {
      this.#log.warn(
        { member: hb.from, peer: peerId },
        'heartbeat refused: its signer is not the peer this member is bound to',
      );
      return false;
    }
    const now = this.#clock.now();
    const known = this.#members.get(hb.from);
    const kids = hb.kids ? new Set(hb.kids) : (known?.kids ?? new Set<string>());
    const changed =
      !known ||
      known.peerId === undefined ||
      known.name !== hb.name ||
      known.httpUrl !== hb.httpUrl ||
      !sameSet(known.kids, kids);
    const member: Member = known ?? {
      nodeId: hb.from,
      name: hb.name,
      httpUrl: hb.httpUrl,
      peerId,
      incarnation: hb.incarnation,
      digest: hb.digest,
      kids,
      lastHeartbeatAt: undefined,
      disconnectedAt: undefined,
      self: false,
    };
    // Heartbeats are ordered by (incarnation, sequence), never by the sender's clock: one no newer than the last
    // seen from that sender is ignored, so a dead member does not come back to life on old news (a sender of an
    // older version, without `seq`, is ordered by its `sentAt`). A newer one is credited with when it was sent, in
    // local time: the sender's `sentAt` (its monotonic clock) plus the smallest offset seen from it in this
    // incarnation (delay + clock difference), so one that gossip delivers late is credited with its real age. When
    // the sender's clock went back (a newer heartbeat sent "earlier"), the offset is measured again: a clock that
    // steps never makes a live member dead.
    const sameIncarnation = known !== undefined && known.incarnation === hb.incarnation && this.#offsets.has(hb.from);
    const lastSeq = this.#lastSeq.get(hb.from);
    const stepped =
      sameIncarnation && hb.seq !== undefined && lastSeq !== undefined && hb.sentAt <= this.#lastSentAt.get(hb.from)!;
    if (
      sameIncarnation &&
      (hb.seq !== undefined && lastSeq !== undefined ? hb.seq <= lastSeq : hb.sentAt <= this.#lastSentAt.get(hb.from)!)
    )
      return false;
    const estimate = now - hb.sentAt;
    const offset = sameIncarnation && !stepped ? Math.min(this.#offsets.get(hb.from)!, estimate) : estimate;
    this.#offsets.set(hb.from, offset);
    this.#lastSentAt.set(hb.from, hb.sentAt);
    if (hb.seq !== undefined) this.#lastSeq.set(hb.from, hb.seq);
    else this.#lastSeq.delete(hb.from);
    const sentLocal = Math.min(now, hb.sentAt + offset);
    Object.assign(member, {
      name: hb.name,
      httpUrl: hb.httpUrl,
      peerId,
      incarnation: hb.incarnation,
      digest: hb.digest,
      kids,
      map: hb.map,
      registrations: hb.registrations,
    });
    if (member.lastHeartbeatAt === undefined || sentLocal > member.lastHeartbeatAt)
      Object.assign(member, { lastHeartbeatAt: sentLocal, disconnectedAt: undefined });
    this.#members.set(member.nodeId, member);
    onFresh?.();
    if (changed) await this.#persist(member);
    if (!known) {
      this.#log.info({ member: member.nodeId, name: member.name }, 'member joined');
      this.emit('member:joined', member);
    }
    this.emit('member:heartbeat', member);
    return true;
  }

  /** Marks the member behind `peerId` as disconnected (suspect until it is heard again). */
  disconnected(peerId: string): void {
    for (const m of this.#members.values()) if (m.peerId === peerId && !m.self) m.disconnectedAt = this.#clock.now();
  }

  /** The member's state now. */
  state(member: Member): MemberState {
    if (member.self) return 'alive';
    if (member.lastHeartbeatAt === undefined) return 'dead';
    const silence = this.#clock.now() - member.lastHeartbeatAt;
    if (silence >= this.#timing.deadAfterMs) return 'dead';
    if (silence >= this.#timing.suspectAfterMs || member.disconnectedAt !== undefined) return 'suspect';
    return 'alive';
  }

  /** Every member, this node included. */
  all(): Member[] {
    return [...this.#members.values()];
  }

  /** Members that are not dead, this node included. */
  live(): Member[] {
    return this.all().filter((m) => this.state(m) !== 'dead');
  }

  /** The member with `peerId`, if known. */
  byPeer(peerId: string): Member | undefined {
    return this.all().find((m) => m.peerId === peerId);
  }

  /**
   * Whether a message that names node `nodeId` and arrived from (or was signed by) `peerId` is an impostor's: the
   * node is bound to another peer, or the peer to another node. Unknown nodes and peers are not impostors (yet).
   */
  impostor(nodeId: string, peerId: string): boolean {
    const bound = this.#members.get(nodeId)?.peerId;
    if (bound !== undefined && bound !== peerId) return true;
    const holder = this.byPeer(peerId);
    return holder !== undefined && holder.nodeId !== nodeId;
  }

  /** The node `peerId` is bound to, if any. */
  identify(peerId: string): string | undefined {
    return this.byPeer(peerId)?.nodeId;
  }

  async #persist(member: Member): Promise<void> {
    const record = {
      v: 1,
      nodeId: member.nodeId,
      name: member.name,
      httpUrl: member.httpUrl,
      kids: [...member.kids],
      ...(member.peerId ? { peerId: member.peerId } : {}),
    };
    await this.#store.put(`${MEMBER_PREFIX}${member.nodeId}`, pack(record), { sync: true });
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
