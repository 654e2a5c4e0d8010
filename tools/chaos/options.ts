/**
 * Parsing and checking `npm run chaos` options, apart from the command line itself so they can be tested. The
 * parsers throw commander's `InvalidArgumentError` (the command exits 2 with the message); `optionsProblem`
 * checks options against each other once they are all parsed.
 */
import { InvalidArgumentError } from 'commander';
import { NET_MODES, type NetMode } from './network.js';
import { FAULT_NAMES, HOOK_FAULT_NAMES, isNetFault, NET_FAULT_NAMES, type FaultName } from './schedule.js';

/** A parser of whole numbers from `min` to `max`. */
export function integer(min: number, max: number): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}, got "${text}"`);
    return n;
  };
}

/** `--faults`: comma-separated fault names, or `none`. */
export function faultList(text: string): FaultName[] {
  if (text === 'none') return [];
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = names.filter((n) => !(FAULT_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0 || names.length === 0) {
    throw new InvalidArgumentError(
      `unknown fault ${unknown.join(', ') || '(none given)'}; choose from ${HOOK_FAULT_NAMES.join(', ')}, ${NET_FAULT_NAMES.join(', ')} (these three with --net netns), or none`,
    );
  }
  return [...new Set(names)] as FaultName[];
}

/** `--net`: `loopback` or `netns`. */
export function netMode(text: string): NetMode {
  if (!(NET_MODES as readonly string[]).includes(text))
    throw new InvalidArgumentError(`expected ${NET_MODES.join(' or ')}, got "${text}"`);
  return text as NetMode;
}

/** What is wrong with the options together, or undefined: packet-cut faults need `--net netns`. */
export function optionsProblem(o: { net: NetMode; faults: readonly FaultName[] }): string | undefined {
  const cuts = o.faults.filter(isNetFault);
  if (o.net === 'netns' || cuts.length === 0) return undefined;
  return `--faults ${cuts.join(',')} cut packets with iptables between network namespaces and need --net netns (root, ip netns and iptables); --net is ${o.net}`;
}
