import type { z } from 'zod';
import type { configSchema, RealmConfig } from './schema.js';

/**
 * The validated, frozen configuration of one node. `realms` always holds the default realm, every realm has its
 * issuer, `bootstrapExpect` is filled in, and paths are absolute.
 */
export type Config = Readonly<
  Omit<z.output<typeof configSchema>, 'realms' | 'bootstrapExpect'> & {
    realms: Readonly<Record<string, RealmConfig>>;
    bootstrapExpect: number;
  }
>;

export type { RealmConfig };

/** `managementKeyPkcs11` after validation: where the wrapped management key is and how to unwrap it. */
export type Pkcs11UnsealConfig = NonNullable<Config['managementKeyPkcs11']>;

/** Settings from command-line flags; each overrides the file and the environment. */
export interface ConfigOverrides {
  name?: string;
  dataDir?: string;
  /** `HOST:PORT` */
  http?: string;
  /** `HOST:PORT` */
  p2p?: string;
  seeds?: string[];
  logLevel?: string;
}
