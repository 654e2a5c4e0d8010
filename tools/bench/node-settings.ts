/**
 * The settings of the node benchmark (node-bench.ts) and of its pinned re-execution (main.ts): load shape, fresh
 * starts, the decrypt benchmark's plaintext, the CPUs and environment variables; the paths they use (repository
 * root, keymesh CLI, bare server) and the log every part writes to.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONNECTIONS = 50;
export const PIPELINING = 1;
export const WARMUP_SECONDS = 1;
export const DURATION_SECONDS = 5;
export const REPETITIONS = 3;
/** Fresh starts for the startup time and idle RSS. */
export const STARTUPS = 5;
export const READY_POLL_MS = 10;
export const READY_TIMEOUT_MS = 30_000;
export const IDLE_MS = 2_000;
/** Plaintext size of the decrypt benchmark's JWE. */
export const PLAINTEXT_BYTES = 100;
export const JWKS_RATIO_GOAL = 0.9;
export const SERVER_CPU = 0;
export const LOAD_CPU = 1;
/** Set in the environment of the re-executed, pinned benchmark. */
export const PINNED_ENV = 'KEYMESH_BENCH_PINNED';
/** Set by the parent for the pinned node benchmark: the raw JSON file both parts write. */
export const RAW_FILE_ENV = 'KEYMESH_BENCH_RAW_FILE';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = join(ROOT, 'dist/src/cli/main.js');
export const BARE_SERVER = fileURLToPath(new URL('./bare-server.js', import.meta.url));

export const log = (line: string) => process.stderr.write(`${line}\n`);
