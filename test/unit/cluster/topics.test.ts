import { describe, expect, it } from 'vitest';
import { ClusterTopics } from '../../../src/cluster/topics.js';

describe('cluster topics', () => {
  it("counts messages on the cluster's own topics by short name and ignores others", () => {
    const counted: string[] = [];
    const topics = new ClusterTopics('c1', {
      gossip: (topic, direction) => counted.push(`${topic}:${direction}`),
      syncPull: () => undefined,
    });
    expect(topics.all).toEqual(['keymesh/c1/keys/1', 'keymesh/c1/members/1', 'keymesh/c1/revocations/1']);
    topics.count(topics.members, 'in');
    topics.count(topics.revocations, 'rejected');
    topics.count('keymesh/other/members/1', 'in');
    expect(counted).toEqual(['members:in', 'revocations:rejected']);
  });
});
