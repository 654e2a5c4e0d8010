/** `renderRegistrationsMarkdown` (tools/bench/registrations.ts): a results object in, the Markdown summary out. */
import { describe, expect, it } from 'vitest';
import { type RegistrationResults, renderRegistrationsMarkdown } from '../../../tools/bench/registrations.js';
import { MACHINE } from './machine-fixture.js';

function results(partition: Partial<RegistrationResults['partition']> = {}): RegistrationResults {
  return {
    date: '2026-01-02T03:04:05.000Z',
    machine: MACHINE,
    loadAverage: { start: 0.5, end: 1.234 },
    settings: { nodes: 5, changes: 50, probeMs: 5 },
    ackMs: { median: 3.21, p99: 9.87, max: 12 },
    createEveryNodeMs: { median: 410.04, p99: 2010.5, max: 2100 },
    deleteEveryNodeMs: { median: 390, p99: 1999.96, max: 2050.25 },
    everyNodeMs: { median: 400, p99: 2005, max: 2100 },
    partition: {
      majorityRefusedMs: 512.3,
      minorityStillHonoured: true,
      minorityChange: { status: 503, ms: 10_000 },
      minorityCaughtUpAfterHealMs: 2345.67,
      ...partition,
    },
  };
}

describe('renderRegistrationsMarkdown', () => {
  const text = renderRegistrationsMarkdown(results());
  const lines = text.split('\n');

  it('starts with the title and the date, machine and load line', () => {
    expect(lines[0]).toBe('# Registrations at run time');
    expect(lines[2]).toBe('2026-01-02T03:04:05.000Z · Test CPU @ 2.00GHz × 2 · Node v20.19.0 · load 0.50 → 1.23');
  });

  it('names the cluster size, the rounds and the probe interval', () => {
    expect(text).toContain('5 nodes on loopback');
    expect(text).toContain('50 rounds of one client created and deleted');
    expect(text).toContain('asked every 5 ms');
  });

  it('has one table row per figure with its median, p99 and max in ms, one decimal', () => {
    const header = lines.indexOf('| until | median | p99 | max |');
    expect(header).toBeGreaterThan(0);
    expect(lines.slice(header + 1, header + 6)).toEqual([
      '| --- | --- | --- | --- |',
      '| the writer answered | 3.2 ms | 9.9 ms | 12.0 ms |',
      '| every node honours a new client | 410.0 ms | 2010.5 ms | 2100.0 ms |',
      '| every node refuses a deleted client | 390.0 ms | 2000.0 ms | 2050.3 ms |',
      '| every node honours a change (both) | 400.0 ms | 2005.0 ms | 2100.0 ms |',
    ]);
  });

  it('tells the partition: the lonely node, the majority, the change on the minority and the heal', () => {
    expect(text).toContain(
      'Partition (node 5 cut off from the other 4): a deletion on node 1 was refused by the majority side after 512.3 ms; ' +
        'node 5 still honoured the deleted client 3 s later (it keeps the version it has); ' +
        'a change sent to node 5 answered 503 in 10000.0 ms; after the heal node 5 refused the client 2345.7 ms later.',
    );
  });

  it('says so when the minority refused the deleted client', () => {
    const refused = renderRegistrationsMarkdown(results({ minorityStillHonoured: false }));
    expect(refused).toContain('node 5 refused it; a change sent to node 5');
    expect(refused).not.toContain('still honoured');
  });

  it('follows the cluster size it was given', () => {
    const three = renderRegistrationsMarkdown({ ...results(), settings: { nodes: 3, changes: 2, probeMs: 10 } });
    expect(three).toContain('Partition (node 3 cut off from the other 2)');
    expect(three).toContain('after the heal node 3 refused the client');
  });

  it('ends with a newline after the partition paragraph', () => {
    expect(text.endsWith('later.\n')).toBe(true);
  });
});
