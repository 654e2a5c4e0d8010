import { describe, expect, it } from 'vitest';
import { decodeOffer, encodeOffer, MAX_OFFERED, sharedEpoch } from '../../../src/cluster/network-guard.js';

describe('the private network offer', () => {
  it('round-trips the epochs a node holds and agrees on the newest both hold', () => {
    expect(decodeOffer(encodeOffer([1, 2]))!.sort()).toEqual([1, 2]);
    expect(sharedEpoch([1, 2], [1])).toBe(1);
    expect(sharedEpoch([1, 2], [2, 1])).toBe(2);
    expect(sharedEpoch([2], [1])).toBeUndefined();
  });

  it('refuses what is not an offer: another protocol, a wrong size, a count past the limit', () => {
    expect(decodeOffer(new Uint8Array(24))).toBeUndefined();
    const offer = Buffer.from(encodeOffer([1]));
    expect(decodeOffer(offer.subarray(0, offer.length - 1))).toBeUndefined();
    offer[4] = MAX_OFFERED + 1;
    expect(decodeOffer(offer)).toBeUndefined();
    const wrongMagic = Buffer.from(encodeOffer([1]));
    wrongMagic[0] = 0;
    expect(decodeOffer(wrongMagic)).toBeUndefined();
  });

  it('offers at most the newest epochs that fit', () => {
    const epochs = Array.from({ length: MAX_OFFERED + 3 }, (_, i) => i + 1);
    expect(decodeOffer(encodeOffer(epochs))).toEqual(epochs.slice(-MAX_OFFERED).reverse());
  });
});
