/**
 * Gossip validation trusts no sender's claim: a revocation counts only when its signer is bound to the node it
 * names and that node may revoke; a heartbeat naming a node bound to another signer is dropped.
 */
import type { Message } from '@libp2p/gossipsub';
import { describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { encodeMessage } from '../../../src/cluster/messages.js';
import { TopicValidators } from '../../../src/cluster/topic-validators.js';
import { silentLogger } from '../../../src/log.js';

const MEMBER = 'aaaaaaaaaaaaaaa1';
const OUTSIDER = 'aaaaaaaaaaaaaaa2';
const bound = new Map([
  ['peer-member', MEMBER],
  ['peer-outsider', OUTSIDER],
]);
const members = new Set([MEMBER]);

function signed(from: string, data: Uint8Array, topic = 'revocations'): Message {
  return { type: 'signed', from: { toString: () => from }, data, topic } as unknown as Message;
}

const validators = new TopicValidators({
  sealer: new Sealer(ManagementKey.parse(ManagementKey.generate(), 't'), 'n'),
  log: silentLogger(),
  impostor: (nodeId, signer) => bound.has(signer) && bound.get(signer) !== nodeId,
  mayRevoke: (from, signer) => bound.get(signer) === from && members.has(from),
  rejected: () => undefined,
});

const revocation = (from: string) =>
  encodeMessage({ t: 'revocation', v: 1, from, jti: 'victim-token', exp: 2_000_000_000 });

describe('gossip topic validation', () => {
  it('accepts a revocation only from a member, signed by the peer bound to it', () => {
    expect(validators.revocation(signed('peer-member', revocation(MEMBER)))).toBe('accept');
    // a peer that holds the network key but is no member, one that names a member it is not, and an unsigned one
    expect(validators.revocation(signed('peer-outsider', revocation(OUTSIDER)))).toBe('ignore');
    expect(validators.revocation(signed('peer-outsider', revocation(MEMBER)))).toBe('ignore');
    expect(validators.revocation(signed('peer-unknown', revocation(MEMBER)))).toBe('ignore');
    expect(
      validators.revocation({ type: 'unsigned', data: revocation(MEMBER), topic: 'revocations' } as unknown as Message),
    ).toBe('ignore');
    expect(validators.revocation(signed('peer-member', new Uint8Array([1, 2, 3])))).toBe('reject');
  });
});
