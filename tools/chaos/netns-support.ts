/**
 * Whether this machine can run `--net netns`, checked before anything is made: root, `ip netns`, openssl (the
 * parties' TLS certificate) and an iptables backend that works inside a network namespace. The backend is found
 * by trying: a throwaway namespace is made, a rule added and listed with each installed backend in turn
 * (`iptables-nft` first, then `iptables-legacy`, then plain `iptables`), and the namespace removed again. When
 * anything is missing the answer names all of it; the run then stops (exit 2) and never falls back to loopback.
 */
import { describeFailure, type CommandRunner } from './commands.js';

/** The iptables programs tried, in order. */
export const IPTABLES_BACKENDS = ['iptables-nft', 'iptables-legacy', 'iptables'] as const;

/** An address from TEST-NET-1 (RFC 5737), for the probe rule: nothing ever comes from it. */
const PROBE_SOURCE = '192.0.2.1';

export type NetnsSupport =
  | { readonly ok: true; readonly backend: string }
  | { readonly ok: false; readonly missing: readonly string[] };

/**
 * Checks what `--net netns` needs. `probeName` is the throwaway namespace's name (unique to the run); it is
 * removed before this returns.
 */
export function checkNetnsSupport(o: { uid: number; runner: CommandRunner; probeName: string }): NetnsSupport {
  const { runner } = o;
  const missing: string[] = [];
  if (o.uid !== 0)
    missing.push(`root (running as uid ${o.uid}; namespaces, veth pairs, a bridge and iptables rules need it)`);
  const ip = runner.runSync('ip', ['netns', 'list']);
  if (ip.error === 'ENOENT') missing.push('ip netns (no `ip` command: apt-get install -y iproute2)');
  else if (ip.status !== 0) missing.push(`ip netns (${describeFailure('ip', ['netns', 'list'], ip)})`);
  if (runner.runSync('openssl', ['version']).status !== 0) {
    missing.push(
      'openssl (makes the TLS certificate of the IDP and resource server whose key sets the nodes fetch: apt-get install -y openssl)',
    );
  }
  const installed = IPTABLES_BACKENDS.filter((b) => runner.runSync(b, ['--version']).status === 0);
  if (installed.length === 0)
    missing.push(`iptables (none of ${IPTABLES_BACKENDS.join(', ')} found: apt-get install -y iptables)`);
  if (missing.length > 0) return { ok: false, missing };

  const added = runner.runSync('ip', ['netns', 'add', o.probeName]);
  if (added.status !== 0)
    return { ok: false, missing: [`ip netns (${describeFailure('ip', ['netns', 'add', o.probeName], added)})`] };
  const tried: string[] = [];
  try {
    for (const backend of installed) {
      const add = ['netns', 'exec', o.probeName, backend, '-w', '-A', 'INPUT', '-s', PROBE_SOURCE, '-j', 'DROP'];
      const rule = runner.runSync('ip', add);
      const listed =
        rule.status === 0 ? runner.runSync('ip', ['netns', 'exec', o.probeName, backend, '-w', '-S', 'INPUT']) : rule;
      if (listed.status === 0 && listed.stdout.includes(PROBE_SOURCE)) return { ok: true, backend };
      tried.push(
        rule.status === 0
          ? `${backend}: the rule added was not listed`
          : `${backend}: ${describeFailure('ip', add, rule)}`,
      );
    }
  } finally {
    runner.runSync('ip', ['netns', 'del', o.probeName]);
  }
  return { ok: false, missing: [`a working iptables backend in a network namespace (${tried.join('; ')})`] };
}
