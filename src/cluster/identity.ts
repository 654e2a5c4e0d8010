/**
 * The node's libp2p identity: an Ed25519 key created on first start and kept sealed in the store, so the peer id
 * stays the same across restarts.
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import type { SealedStore } from '../storage/sealed-store.js';

const IDENTITY_KEY = 'node/libp2p-identity';

/** Loads the node's libp2p private key, creating and storing it (synced) on first start. */
export async function loadPeerIdentity(store: SealedStore): Promise<PrivateKey> {
  const stored = await store.get(IDENTITY_KEY);
  if (stored) return privateKeyFromProtobuf(stored);
  const key = await generateKeyPair('Ed25519');
  await store.put(IDENTITY_KEY, privateKeyToProtobuf(key), { sync: true });
  return key;
}
