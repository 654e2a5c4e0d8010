#!/usr/bin/env node
/** The `keymesh` command. */
import './v8-flags.js';
import '../polyfills.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { OPERATOR_SCOPES, KEY_USES } from '../config/defaults.js';
import { ManagementKey } from '../crypto/management-key.js';
import { isKeymeshError } from '../errors.js';
import { hashOperatorToken } from '../http/operator-auth.js';
import { randomBytes } from 'node:crypto';
import { runAuditVerify } from './audit.js';
import { runRestore, runSnapshot } from './backup.js';
import { runCluster, runEraseSecret, runKeys, runRemoveMember, runRevoke, runRotate } from './operator.js';
import {
  runManagementKeyInstall,
  runManagementKeyList,
  runManagementKeyRemove,
  runManagementKeyUse,
} from './management-key.js';
import {
  runRegistrationDelete,
  runRegistrationGet,
  runRegistrationList,
  runRegistrationPut,
  runRegistrationSecret,
} from './registrations.js';
import { KIND_BY_PATH, type KindPath } from '../registrations/requests.js';
import { runPkcs11WrapKey, type Pkcs11WrapKeyOptions } from './pkcs11-wrap-key.js';
import { runStart } from './start.js';
import { generateClientSecret, hashClientSecret } from '../tokens/client-secrets.js';

const program = new Command('keymesh')
  .description('keymesh: clustered key management and secure token service')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(`keymesh: ${str}`) });

const collect = (value: string, previous: string[] = []) => [...previous, value];

const parseSlot = (value: string) => {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError('a slot id is a non-negative integer');
  return Number(value);
};

program
  .command('start')
  .description('start one node')
  .option('--config <file>', 'JSON config file')
  .option('--name <name>', 'node name (overrides the file)')
  .option('--data-dir <dir>', 'data directory (overrides the file)')
  .option('--http <host:port>', 'HTTP listen address (overrides the file)')
  .option('--p2p <host:port>', 'libp2p listen address (overrides the file)')
  .option('--seed <host:port>', 'a seed node; repeatable (overrides the file)', collect)
  .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
  .option(
    '--allow-fault-injection',
    'accept faults from KEYMESH_FAULT_* variables and PUT /v1/faults (tests and chaos runs only)',
  )
  .action(
    async (o: {
      config?: string;
      name?: string;
      dataDir?: string;
      http?: string;
      p2p?: string;
      seed?: string[];
      logLevel?: string;
      allowFaultInjection?: boolean;
    }) => {
      await runStart({
        ...(o.allowFaultInjection && { allowFaultInjection: true }),
        ...(o.config !== undefined && { config: o.config }),
        ...(o.name !== undefined && { name: o.name }),
        ...(o.dataDir !== undefined && { dataDir: o.dataDir }),
        ...(o.http !== undefined && { http: o.http }),
        ...(o.p2p !== undefined && { p2p: o.p2p }),
        ...(o.seed !== undefined && { seeds: o.seed }),
        ...(o.logLevel !== undefined && { logLevel: o.logLevel }),
      });
    },
  );

const withNode = (cmd: Command) =>
  cmd
    .requiredOption('--node <url>', 'base URL of a node, e.g. http://127.0.0.1:8701')
    .option('--token <token>', 'operator token (default: KEYMESH_ADMIN_TOKEN)')
    .option('--token-file <file>', 'read the operator token from a file')
    .option('--json', 'print JSON');

withNode(program.command('keys').description("show a node's key set: each key's state, times and publication"))
  .option('--realm <realm>', 'only this realm')
  .action(runKeys);

withNode(
  program
    .command('cluster')
    .description(
      'show the members (state, last heartbeat, key-set digest) and the cluster map (epoch, roles, ring shares)',
    ),
).action(runCluster);

withNode(
  program
    .command('remove-member')
    .description('remove a member from the cluster map (its ranges are handed over first)')
    .argument('<id>', 'node id or name'),
).action(runRemoveMember);

withNode(program.command('rotate').description('publish a new key now; it becomes active after prePublishMs'))
  .addOption(new Option('--use <use>', 'key use').choices([...KEY_USES]).makeOptionMandatory())
  .option('--realm <realm>', 'realm (default: default)')
  .action(runRotate);

withNode(
  program
    .command('revoke')
    .description('revoke a key at once: unpublished everywhere, never used again')
    .argument('<kid>', 'key id'),
).action(runRevoke);

withNode(
  program
    .command('snapshot')
    .description(
      'write a sealed snapshot of every committed register value and key record to a new file (mode 0600; docs/backup.md)',
    ),
)
  .requiredOption('--out <file>', 'the snapshot file to create (never overwritten)')
  .action(runSnapshot);

withNode(
  program
    .command('restore')
    .description(
      'restore a snapshot into a cluster with the same management key: verified whole, then written; existing values are kept and reported',
    ),
)
  .requiredOption('--in <file>', 'the snapshot file')
  .action(runRestore);

const managementKey = program
  .command('management-key')
  .description('rotate the management key online (docs/management-key.md)');
withNode(
  managementKey.command('list').description("every member's management keys, sealing epoch and re-seal progress"),
).action(runManagementKeyList);
withNode(
  managementKey
    .command('install')
    .description('install a new key on every member: KEYMESH_NEW_MANAGEMENT_KEY, or a new random key printed once'),
).action(runManagementKeyInstall);
withNode(
  managementKey
    .command('use')
    .description('seal with the key of <epoch> on every member (refused until every member holds it)')
    .argument('<epoch>', 'epoch'),
).action(runManagementKeyUse);
withNode(
  managementKey
    .command('remove')
    .description(
      'forget the key of <epoch> on every member (refused until every member seals with a newer key and finished re-sealing)',
    )
    .argument('<epoch>', 'epoch'),
).action(runManagementKeyRemove);

const REGISTRATION_HELP: Record<KindPath, string> = {
  clients: 'clients of the token service',
  'resource-servers': 'resource servers of the secret server',
  issuers: 'trusted identity providers',
  operators: 'operator tokens',
};
for (const kinds of Object.keys(KIND_BY_PATH) as KindPath[]) {
  const group = program
    .command(kinds)
    .description(`${REGISTRATION_HELP[kinds]}, registered in the cluster at run time (docs/registrations.md)`);
  const realm = (cmd: Command) => cmd.option('--realm <realm>', 'the realm (default: the default realm)');
  realm(withNode(group.command('list').description(`every registered ${kinds.replace(/s$/, '')}`))).action((o) =>
    runRegistrationList(kinds, o),
  );
  realm(
    withNode(group.command('get').description('one registration (hashes are never shown)').argument('<id>', 'its id')),
  ).action((id, o) => runRegistrationGet(kinds, id, o));
  realm(
    withNode(
      group
        .command('put')
        .description('create or replace one (a secret it needs is generated and printed once)')
        .argument('<id>', 'its id'),
    ),
  )
    .option('--record <json>', "the registration as JSON (the config entry's schema)")
    .option('--file <file>', 'read the registration from a JSON file')
    .option('--if-version <n>', 'only if its version is still <n> (compare-and-set; 409 otherwise)')
    .option('--create', 'only if it does not exist yet')
    .option('--wait', 'return once every live member serves the change')
    .action((id, o) => runRegistrationPut(kinds, id, o));
  realm(withNode(group.command('delete').description('delete one').argument('<id>', 'its id')))
    .option('--if-version <n>', 'only if its version is still <n>')
    .option('--wait', 'return once every live member serves the change')
    .action((id, o) => runRegistrationDelete(kinds, id, o));
  if (kinds === 'clients' || kinds === 'operators') {
    realm(
      withNode(group.command('secret').description('generate a new secret, printed once').argument('<id>', 'its id')),
    )
      .option('--keep-previous', 'clients: keep accepting the previous secret beside the new one (a rotation window)')
      .option('--wait', 'return once every live member serves the change')
      .action((id, o) => runRegistrationSecret(kinds, id, o));
  }
}

withNode(
  program
    .command('erase-secret')
    .description(
      "erase a user's secret for ever (GDPR Art. 17): every node answers 410 for that user from then on, and never creates a new secret",
    ),
)
  .requiredOption('--issuer <iss>', "the user token's issuer (iss)")
  .requiredOption('--subject <sub>', "the user token's subject (sub)")
  .option(
    '--force',
    'erase also when the issuer is not one of the trusted issuers (refused otherwise: an erasure is for ever)',
  )
  .action(runEraseSecret);

program
  .command('audit')
  .description('the audit log (docs/audit.md)')
  .command('verify')
  .description(
    'check the hash chain of audit log files (rotated files first, oldest first): exit 0 valid, 1 broken (the first bad line is printed), 2 usage',
  )
  .argument('[files...]', 'audit log files')
  .action(async (files: string[]) => {
    process.exitCode = await runAuditVerify(files, { stdout: process.stdout, stderr: process.stderr });
  });

program
  .command('hash-client-secret')
  .description(
    'print a new random client secret and the secretHash that accepts it (a fast keyed hash: the secret has 256 bits); with --secret-stdin, the scrypt hash of a secret you chose, read from standard input',
  )
  .option('--secret-stdin', 'hash the secret read from standard input (slow scrypt: a chosen secret may be guessable)')
  .action(async (o: { secretStdin?: boolean }) => {
    if (!o.secretStdin) {
      const { secret, secretHash } = generateClientSecret();
      process.stdout.write(`secret: ${secret}\nsecretHash: ${secretHash}\n`);
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    const secret = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    process.stdout.write(`secretHash: ${await hashClientSecret(secret)}\n`);
  });

program
  .command('gen-management-key')
  .description('print a new random management key (base64url, 32 bytes) for a new cluster')
  .action(() => {
    process.stdout.write(`${ManagementKey.generate()}\n`);
  });

program
  .command('pkcs11-wrap-key')
  .description(
    'wrap the management key (KEYMESH_MANAGEMENT_KEY, else standard input) under an AES key in a PKCS#11 token and write the file managementKeyPkcs11.wrappedKeyFile names (docs/pkcs11.md)',
  )
  .requiredOption('--module <path>', 'the PKCS#11 module (shared library)')
  .addOption(new Option('--token-label <label>', 'label of the token').conflicts('slot'))
  .addOption(new Option('--slot <id>', 'id of the slot holding the token').argParser(parseSlot))
  .requiredOption('--key-label <label>', 'label of the AES wrapping key')
  .addOption(new Option('--pin-env <name>', 'environment variable holding the user PIN').conflicts('pinFile'))
  .option('--pin-file <file>', 'file holding the user PIN')
  .requiredOption('--out <file>', 'the wrapped-key file to write (never overwritten)')
  .option(
    '--generate-aes-key',
    'create the AES key (256-bit, sensitive, not extractable, wrap and unwrap only) if the token has none with that label',
  )
  .action(async (o: Pkcs11WrapKeyOptions, cmd: Command) => {
    await runPkcs11WrapKey(o, {
      env: process.env,
      stdin: process.stdin,
      stdout: process.stdout,
      fail: (message) => cmd.error(`error: ${message}`),
    });
  });

program
  .command('gen-operator-token')
  .description('print a new operator token and the operatorTokens entry that accepts it')
  .requiredOption('--name <name>', 'a name for the token')
  .addOption(new Option('--scopes <scopes...>', 'scopes').choices([...OPERATOR_SCOPES]).makeOptionMandatory())
  .action((o: { name: string; scopes: string[] }) => {
    const token = randomBytes(32).toString('base64url');
    process.stdout.write(
      `token: ${token}\nconfig: ${JSON.stringify({ name: o.name, hash: hashOperatorToken(token), scopes: o.scopes })}\n`,
    );
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (isKeymeshError(err)) process.stderr.write(`keymesh: ${err.code}: ${err.message}\n`);
  else process.stderr.write(`keymesh: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
