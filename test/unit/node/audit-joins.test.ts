/** Joins reach the audit log from map changes; a node's first map records nothing. */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { MemoryAuditLog } from '../../../src/audit/memory-audit-log.js';
import type { ClusterMap } from '../../../src/cluster-map/cluster-map.js';
import type { MapKeeperEvents } from '../../../src/cluster-map/map-keeper.js';
import { recordJoins } from '../../../src/node/audit-joins.js';

const map = (epoch: number, ids: string[]) =>
  ({
    epoch,
    id: 'm',
    members: ids.map((nodeId) => ({ nodeId, name: nodeId, role: 'normal' })),
  }) as unknown as ClusterMap;

describe('audit of joins', () => {
  it('records each member that appears after an earlier map, and nothing for the first map', async () => {
    const keeper = new EventEmitter<MapKeeperEvents>();
    const audit = new MemoryAuditLog();
    recordJoins(keeper, audit);
    keeper.emit('map:changed', map(1, ['a', 'b', 'c']), undefined);
    keeper.emit('map:changed', map(2, ['a', 'b', 'c', 'd']), map(1, ['a', 'b', 'c']));
    keeper.emit('map:changed', map(3, ['a', 'b', 'd']), map(2, ['a', 'b', 'c', 'd']));
    await expect.poll(() => audit.lines.length).toBe(1);
    expect(audit.events).toEqual([expect.objectContaining({ event: 'member:add', member: 'd' })]);
  });
});
