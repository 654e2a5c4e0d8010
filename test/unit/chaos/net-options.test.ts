import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import type { CommandResult, CommandRunner } from '../../../tools/chaos/commands.js';
import { freeSubnet, netnsNames } from '../../../tools/chaos/netns-network.js';
import { checkNetnsSupport } from '../../../tools/chaos/netns-support.js';
import { faultList, netMode, optionsProblem } from '../../../tools/chaos/options.js';

describe('chaos options', () => {
  it('takes the packet-cut faults by name, and refuses unknown ones naming the choices', () => {
    expect(faultList('kill,netdrop,oneway,bridge,kill')).toEqual(['kill', 'netdrop', 'oneway', 'bridge']);
    expect(faultList('none')).toEqual([]);
    expect(() => faultList('kill,meteor')).toThrow(InvalidArgumentError);
    expect(() => faultList('kill,meteor')).toThrow(
      /unknown fault meteor; choose from kill, restart, pause, partition, skew, commit-kill, wipe, netdrop, oneway, bridge/,
    );
  });

  it('takes --net loopback or netns and nothing else', () => {
    expect(netMode('loopback')).toBe('loopback');
    expect(netMode('netns')).toBe('netns');
    expect(() => netMode('docker')).toThrow(/expected loopback or netns, got "docker"/);
  });

  it('refuses packet-cut faults without --net netns, naming them', () => {
    expect(optionsProblem({ net: 'loopback', faults: ['kill', 'partition'] })).toBeUndefined();
    expect(optionsProblem({ net: 'netns', faults: ['kill', 'netdrop', 'oneway', 'bridge'] })).toBeUndefined();
    expect(optionsProblem({ net: 'netns', faults: [] })).toBeUndefined();
    expect(optionsProblem({ net: 'loopback', faults: ['kill', 'oneway', 'bridge'] })).toMatch(
      /^--faults oneway,bridge .* need --net netns/,
    );
  });
});

/** A fake host: `answers` maps a command line (or its start) to a result; anything else exits 0 silently. */
function fakeHost(answers: Record<string, Partial<CommandResult>>): CommandRunner & { calls: string[] } {
  const calls: string[] = [];
  const answer = (file: string, args: readonly string[]): CommandResult => {
    const line = [file, ...args].join(' ');
    calls.push(line);
    const key = Object.keys(answers)
      .filter((k) => line.startsWith(k))
      .sort((a, b) => b.length - a.length)[0];
    return { status: 0, stdout: '', stderr: '', ...(key === undefined ? {} : answers[key]) };
  };
  return { calls, runSync: answer, run: async (file, args) => answer(file, args) };
}

const LISTED = { stdout: '-P INPUT ACCEPT\n-A INPUT -s 192.0.2.1/32 -j DROP\n' };
const NOT_FOUND = { status: null, error: 'ENOENT' };

describe('netns support check', () => {
  it('picks iptables-nft when a rule added with it is listed in a throwaway namespace, and removes that namespace', () => {
    const host = fakeHost({ 'ip netns exec probe iptables-nft -w -S': LISTED });
    expect(checkNetnsSupport({ uid: 0, runner: host, probeName: 'probe' })).toEqual({
      ok: true,
      backend: 'iptables-nft',
    });
    expect(host.calls).toContain('ip netns add probe');
    expect(host.calls.at(-1)).toBe('ip netns del probe');
  });

  it('falls back to iptables-legacy when nft does not work in this kernel', () => {
    const host = fakeHost({
      'ip netns exec probe iptables-nft -w -A': {
        status: 1,
        stderr: 'iptables: Failed to initialize nft: Protocol not supported',
      },
      'ip netns exec probe iptables-legacy -w -S': LISTED,
    });
    expect(checkNetnsSupport({ uid: 0, runner: host, probeName: 'probe' })).toEqual({
      ok: true,
      backend: 'iptables-legacy',
    });
    expect(host.calls.at(-1)).toBe('ip netns del probe');
  });

  it('names everything missing at once: root, ip netns, openssl, iptables', () => {
    const host = fakeHost({
      'ip netns list': NOT_FOUND,
      openssl: NOT_FOUND,
      'iptables-nft': NOT_FOUND,
      'iptables-legacy': NOT_FOUND,
      iptables: NOT_FOUND,
    });
    const support = checkNetnsSupport({ uid: 1000, runner: host, probeName: 'probe' });
    expect(support.ok).toBe(false);
    const missing = support.ok ? [] : support.missing;
    expect(missing).toHaveLength(4);
    expect(missing[0]).toMatch(/^root \(running as uid 1000/);
    expect(missing[1]).toMatch(/^ip netns \(no `ip` command/);
    expect(missing[2]).toMatch(/^openssl/);
    expect(missing[3]).toMatch(
      /^iptables \(none of iptables-nft, iptables-legacy, iptables found: apt-get install -y iptables\)/,
    );
    expect(host.calls.some((c) => c.startsWith('ip netns add'))).toBe(false);
  });

  it('says which backends were tried when none works', () => {
    const host = fakeHost({
      'ip netns exec probe': { status: 4, stderr: "iptables v1.8.9: can't initialize iptables table `filter'" },
    });
    const support = checkNetnsSupport({ uid: 0, runner: host, probeName: 'probe' });
    expect(support.ok).toBe(false);
    expect(support.ok ? '' : support.missing.join()).toMatch(
      /working iptables backend .*iptables-nft: .*can't initialize.*; iptables-legacy: .*; iptables: /,
    );
    expect(host.calls.at(-1)).toBe('ip netns del probe');
  });
});

describe('netns names and addresses', () => {
  it("names namespaces and veth ends after the run's pid, within 15 characters per interface", () => {
    const names = netnsNames(4_194_304, 9);
    expect(names.switch).toBe('keymesh-4194304-sw');
    expect(names.host).toBe('kmb4194304');
    expect(names.namespaces[8]).toBe('keymesh-4194304-n9');
    const links = [names.host, names.hostPort, ...names.veths, ...names.peers];
    for (const name of links) expect(name.length).toBeLessThanOrEqual(15);
    expect(new Set(links).size).toBe(20);
  });

  it('picks the first 10.77.S.0/24 no address or route uses, from the start it is given', () => {
    const used = 'inet 10.77.7.1/24 brd 10.77.7.255 scope global kmb1\n10.77.8.0/24 dev kmb2 proto kernel\n';
    expect(freeSubnet(used, 7)).toBe(9);
    expect(freeSubnet(used, 70)).toBe(70);
    expect(freeSubnet('10.77.254.0/24 dev x', 254)).toBe(1);
  });
});
