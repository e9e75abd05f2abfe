import { describe, expect, it } from 'vitest';
import { isKisekiError } from '../../core/errors.js';
import { hasArchiveNode, ingestNodesOf, parseScenario, type Scenario } from './scenario.js';

const base = {
  name: 'cmp',
  description: 'comparison',
  kind: 'steady',
  agents: 10,
  eventsPerAgentPerSec: 5,
  detectionRate: 0,
  durationSec: 2,
  clientProcesses: 2,
  cluster: { configurations: ['embedded', 'ingest-1', 'ingest-2'] },
};

/** The field the first validation error names, or 'ok'. */
function firstBadField(raw: Record<string, unknown>): string {
  try {
    parseScenario(raw);
    return 'ok';
  } catch (err) {
    if (!isKisekiError(err, 'ERR_INVALID_INPUT')) throw err;
    return String(err.details?.field);
  }
}

describe('scenario: the cluster section', () => {
  it('fills in the defaults of a valid comparison', () => {
    const s: Scenario = parseScenario(base);
    expect(s.cluster).toEqual({ configurations: ['embedded', 'ingest-1', 'ingest-2'], ingestArgs: [], shardArgs: [], shardCatchUpSec: 60 });
  });

  it.each([
    { what: 'an unknown configuration', patch: { cluster: { configurations: ['embedded', 'ingest-5'] } }, field: 'cluster.configurations.1' },
    { what: 'a configuration named twice', patch: { cluster: { configurations: ['ingest-1', 'ingest-1'] } }, field: 'cluster.configurations' },
    { what: 'no configuration', patch: { cluster: { configurations: [] } }, field: 'cluster.configurations' },
    { what: 'an unknown key', patch: { cluster: { configurations: ['embedded'], natsReplicas: 3 } }, field: 'cluster' },
    { what: 'a catch-up wait of 0 s', patch: { cluster: { configurations: ['embedded'], shardCatchUpSec: 0 } }, field: 'cluster.shardCatchUpSec' },
    { what: 'flags that are not strings', patch: { cluster: { configurations: ['ingest-1'], ingestArgs: [1] } }, field: 'cluster.ingestArgs.0' },
    { what: 'a kind other than steady', patch: { kind: 'burst', burst: { outageSec: 1 } }, field: 'cluster' },
    { what: 'a fleet section', patch: { fleet: { offlineAfterSec: 5 } }, field: 'fleet' },
    { what: 'fewer client processes than ingest nodes', patch: { clientProcesses: 1 }, field: 'clientProcesses' },
    { what: 'fewer agents than ingest nodes', patch: { agents: 1, clientProcesses: undefined }, field: 'agents' },
  ])('refuses $what (names $field)', ({ patch, field }) => {
    expect(firstBadField({ ...base, ...patch })).toBe(field);
  });

  it('accepts one client process when no configuration has more than one ingest node', () => {
    expect(firstBadField({ ...base, clientProcesses: 1, cluster: { configurations: ['ingest-1', 'embedded'] } })).toBe('ok');
  });

  it('leaves the scenarios without a cluster section as they were', () => {
    const { cluster: _, ...plain } = base;
    expect(parseScenario(plain).cluster).toBeUndefined();
  });

  it.each([
    ['embedded', 0],
    ['ingest-1', 1],
    ['ingest-2', 2],
    ['ingest-4', 4],
    ['ingest-1-archive', 1],
  ] as const)('%s has %i ingest node(s)', (c, n) => {
    expect(ingestNodesOf(c)).toBe(n);
    expect(hasArchiveNode(c)).toBe(c === 'ingest-1-archive');
  });
});
