/**
 * Where a node's management key comes from: `KEYMESH_MANAGEMENT_KEY`, `managementKeyFile`, or a PKCS#11 token
 * (`managementKeyPkcs11`, docs/pkcs11.md). The token is exclusive with the other two; between those two the
 * environment wins, as before. Nothing PKCS#11 is loaded unless the token is configured.
 */
import type { Pkcs11UnsealConfig } from '../config/types.js';
import { ConfigInvalidError } from '../errors.js';
import { loadManagementKey, type ManagementKey, type ManagementKeySource } from './management-key.js';

/** Every place a management key may be given. */
export interface ManagementKeySources extends ManagementKeySource {
  /** `managementKeyPkcs11` from the config, if set. */
  pkcs11?: Pkcs11UnsealConfig | undefined;
}

/**
 * Loads or unseals the management key.
 * @param env the node's environment: the PIN variable is read from it, and it is what the unseal process gets.
 * @throws KeymeshError `ERR_CONFIG_INVALID` when the token and another source are both given, the errors of
 *   `loadManagementKey`, and the `ERR_PKCS11_*` errors of the unseal.
 */
export async function resolveManagementKey(
  sources: ManagementKeySources,
  env: Readonly<Record<string, string | undefined>>,
): Promise<ManagementKey> {
  if (!sources.pkcs11) return loadManagementKey(sources);
  const others = [
    ...(sources.env !== undefined && sources.env.trim() !== '' ? ['KEYMESH_MANAGEMENT_KEY'] : []),
    ...(sources.file !== undefined ? ['managementKeyFile'] : []),
  ];
  if (others.length > 0) {
    throw new ConfigInvalidError([
      {
        path: 'managementKeyPkcs11',
        message: `${others.join(' and ')} ${others.length > 1 ? 'are' : 'is'} given as well: give the management key one way`,
      },
    ]);
  }
  const { unsealManagementKey } = await import('./pkcs11/unseal-process.js');
  return unsealManagementKey(sources.pkcs11, { env });
}
