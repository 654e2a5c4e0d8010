/**
 * V8 settings for a long-running node. This module is the first import of the `keymesh` command, but a static
 * import graph is loaded whole before its first module runs, so the flags take effect only after the young
 * generation has grown while the node's modules loaded; from then on they keep it from growing further.
 *
 * `--max-semi-space-size=1` with `--semi-space-growth-factor=1`: the young generation does not keep growing to
 * 16 MiB per semi-space under load. In the cluster benchmark a member of an idle 10-node cluster held 126.6 MiB with
 * them (median) against 144.9 MiB with the node started with `--max-semi-space-size=16 --semi-space-growth-factor=2`.
 * Setting them before the graph loads (importing the commands dynamically after this module) kept the young
 * generation at 1 MiB from the start, for 1 MiB less there, but 10-node rotation propagation p99 went from about
 * 250 ms to 1,650 ms, rising rotation by rotation (young collections promote sooner), so it is not done.
 * `--optimize-for-size` saved another 5 MiB but cost a quarter of the JWKS throughput, so it is not set. A flag the
 * operator already set (on the command line, also as `--no-…`) is left as set.
 */
import { setFlagsFromString } from 'node:v8';

const FLAGS = ['--max-semi-space-size=1', '--semi-space-growth-factor=1'];

const given = `${process.execArgv.join(' ')} ${process.env['NODE_OPTIONS'] ?? ''}`.replaceAll('_', '-');
for (const flag of FLAGS) {
  const name = flag.split('=')[0]!.slice(2);
  if (!given.includes(`--${name}`) && !given.includes(`--no-${name}`)) setFlagsFromString(flag);
}
