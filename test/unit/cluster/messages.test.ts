import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  encodeMessage,
  heartbeatSchema,
  keyMessageSchema,
  MAX_MESSAGE_BYTES,
  syncRequestSchema,
} from '../../../src/cluster/messages.js';
import { openRecord, sealRecord } from '../../../src/cluster/wire-records.js';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { makeKeyring } from '../../helpers/keyring.js';

const heartbeat = {
  t: 'heartbeat' as const,
  v: 1 as const,
  from: '0123456789abcdef',
  name: 'node-1',
  httpUrl: 'http://127.0.0.1:8701',
  addrs: ['/ip4/127.0.0.1/tcp/9701'],
  incarnation: 3,
  digest: 'd',
  kidsDigest: 'x',
  kids: ['A'.repeat(43)],
  sentAt: 1,
};

describe('wire messages', () => {
  it('round-trips every message type', () => {
    expect(decodeMessage(heartbeatSchema, encodeMessage(heartbeat))).toEqual(heartbeat);
    const req = {
      t: 'sync-request' as const,
      v: 1 as const,
      from: heartbeat.from,
      have: [['B'.repeat(43), true] as [string, boolean]],
    };
    expect(decodeMessage(syncRequestSchema, encodeMessage(req))).toEqual(req);
  });

  it('rejects oversized, non-msgpack, unknown-version, wrong-type and extra-field messages', () => {
    const bad = [
      Buffer.alloc(MAX_MESSAGE_BYTES + 1),
      Buffer.from([0xc1]),
      pack({ ...heartbeat, v: 2 }),
      pack({ ...heartbeat, t: 'key' }),
      pack({ ...heartbeat, extra: 1 }),
      pack({ ...heartbeat, kids: Array.from({ length: 2000 }, () => 'A'.repeat(43)) }),
      pack({ ...heartbeat, from: '../../etc' }),
    ];
    for (const data of bad)
      expect(() => decodeMessage(heartbeatSchema, data)).toThrow(expect.objectContaining({ code: 'ERR_BAD_MESSAGE' }));
  });

  it('refuses a heartbeat sequence number that is negative, fractional or beyond exact integers', () => {
    expect(decodeMessage(heartbeatSchema, encodeMessage({ ...heartbeat, seq: 7 }))).toMatchObject({ seq: 7 });
    for (const seq of [-1, 1.5, 2 ** 53]) {
      expect(() => decodeMessage(heartbeatSchema, pack({ ...heartbeat, seq }))).toThrow(
        expect.objectContaining({ code: 'ERR_BAD_MESSAGE' }),
      );
    }
  });

  it('refuses a heartbeat registrations version that is negative, fractional or beyond exact integers', () => {
    expect(decodeMessage(heartbeatSchema, encodeMessage({ ...heartbeat, registrations: 12 }))).toMatchObject({
      registrations: 12,
    });
    for (const registrations of [-1, 0.5, 2 ** 53, '3']) {
      expect(() => decodeMessage(heartbeatSchema, pack({ ...heartbeat, registrations }))).toThrow(
        expect.objectContaining({ code: 'ERR_BAD_MESSAGE' }),
      );
    }
  });

  it('seals key records on the wire so that only holders of the management key can read them', async () => {
    const { keyring, rotation } = await makeKeyring();
    await rotation.check();
    const key = keyring.requireActive('default', 'enc');
    const mk = ManagementKey.generate();
    const sealed = sealRecord(new Sealer(ManagementKey.parse(mk, 'a'), 'aaaaaaaaaaaaaaaa'), key);
    const message = encodeMessage({ t: 'key', v: 1, from: 'aaaaaaaaaaaaaaaa', kid: key.kid, sealed });
    const decoded = decodeMessage(keyMessageSchema, message);
    const record = openRecord(
      new Sealer(ManagementKey.parse(mk, 'b'), 'bbbbbbbbbbbbbbbb'),
      decoded.kid,
      decoded.sealed,
    );
    expect(record.privateJwk).toEqual(key.toRecord().privateJwk);
    expect(Buffer.from(message).includes(Buffer.from(String(key.toRecord().privateJwk.d)))).toBe(false);
    expect(() =>
      openRecord(
        new Sealer(ManagementKey.parse(ManagementKey.generate(), 'c'), 'cccccccccccccccc'),
        decoded.kid,
        decoded.sealed,
      ),
    ).toThrow(expect.objectContaining({ code: 'ERR_BAD_MESSAGE' }));
    expect(() =>
      openRecord(new Sealer(ManagementKey.parse(mk, 'b'), 'bbbbbbbbbbbbbbbb'), 'Z'.repeat(43), decoded.sealed),
    ).toThrow(expect.objectContaining({ code: 'ERR_BAD_MESSAGE' }));
  });
});
