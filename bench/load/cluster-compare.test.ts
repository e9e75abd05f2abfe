import { describe, expect, it } from 'vitest';
import { clusterCountCheck, comparisonClientProcesses, repetitionOrder, summariseConfiguration, type ClusterComparison, type ConfigurationRun, type MeasuredRun } from './cluster-compare.js';
import { formatClusterComparison } from './result-table.js';
import { parseScenario } from './scenario.js';

const shard = (batches: number, events: number, caughtUp = true) => ({ devices: 1, batches, batchIds: batches, events, eventsProcessed: events, seqGaps: 0, caughtUp });

describe('cluster comparison: the count check', () => {
  it.each([
    { what: 'drained, stream and shard hold the acked batches', drained: true, stream: 10, sh: shard(10, 100), ok: true },
    { what: 'not drained, the stream holds more (unacked batches published)', drained: false, stream: 12, sh: shard(12, 120), ok: true },
    { what: 'the shard node has not caught up (reported in a note, not a mismatch)', drained: true, stream: 10, sh: shard(7, 70, false), ok: true },
    { what: 'an acked batch missing from the stream', drained: false, stream: 9, sh: shard(9, 90), ok: false },
    { what: 'a batch more than acked after a full drain', drained: true, stream: 11, sh: shard(11, 110), ok: false },
    { what: 'a caught-up shard node missing a batch', drained: true, stream: 10, sh: { ...shard(10, 100), batches: 9 }, ok: false },
    { what: 'a caught-up shard node storing a batch twice', drained: true, stream: 10, sh: { ...shard(10, 100), batchIds: 9 }, ok: false },
    { what: 'a caught-up shard node with other events than acked', drained: true, stream: 10, sh: shard(10, 99), ok: false },
    { what: 'an archive node holding the stream', drained: true, stream: 10, sh: shard(10, 100), ar: shard(10, 100), ok: true },
    { what: 'an archive node still copying (a note, not a mismatch)', drained: true, stream: 10, sh: shard(10, 100), ar: shard(4, 40, false), ok: true },
    { what: 'a caught-up archive node storing a batch twice', drained: true, stream: 10, sh: shard(10, 100), ar: { ...shard(10, 100), batchIds: 9 }, ok: false },
    { what: 'a caught-up archive node missing events', drained: true, stream: 10, sh: shard(10, 100), ar: shard(10, 90), ok: false },
  ])('$what → ok $ok', ({ drained, stream, sh, ar, ok }: { drained: boolean; stream: number; sh: ReturnType<typeof shard>; ar?: ReturnType<typeof shard>; ok: boolean }) => {
    const mismatch = clusterCountCheck({ batches: 10, events: 100 }, drained, stream, sh, ar);
    expect(mismatch === undefined).toBe(ok);
  });
});

function run(configuration: MeasuredRun['configuration'], repetition: number, eventsPerSec: number, p99: number, ok = true): MeasuredRun {
  return {
    configuration,
    repetition,
    startedAt: '2026-12-01T00:00:00.000Z',
    wallSec: 30,
    eventsPerSec,
    batchesPerSec: 500,
    offeredEventsPerSec: 20_000,
    ackLatencyMs: { count: 10, p50: 1, p99, p999: p99, max: p99 },
    deliveryLatencyMs: { count: 10, p50: 1, p99, p999: p99, max: p99 },
    windowSec: 20,
    cpuSeconds: configuration === 'embedded' ? { kiseki: 10, client: 2 } : { nats: 3, ingest: 6, shard: 8, client: 2 },
    connect: { agents: 500, welcomed: 500, seconds: 1 },
    countCheck: { ok, batchesAcked: 10, eventsAcked: 100, drained: true, unackedAtEnd: 0, storedIn: 'stream', storedBatches: ok ? 10 : 9, ...(ok ? {} : { mismatch: 'the stream holds 9 batches, 10 were acked' }) },
    clientErrors: {},
    notes: [],
  };
}

describe('cluster comparison: the summary', () => {
  const runs: ConfigurationRun[] = [
    run('embedded', 1, 20_000, 4),
    run('embedded', 2, 19_000, 6),
    run('embedded', 3, 19_500, 5),
    run('ingest-2', 1, 18_000, 9),
    { configuration: 'ingest-2', repetition: 2, startedAt: '2026-12-01T00:00:00.000Z', error: 'ingest node 2 exited during the run' },
    run('ingest-1', 1, 17_000, 12, false),
  ];

  it('gives the median with its min–max spread of each figure and each role', () => {
    const s = summariseConfiguration('embedded', runs);
    expect(s).toMatchObject({ measured: 3, failed: 0, countCheckFailures: 0, ok: true, eventsPerSec: { median: 19_500, min: 19_000, max: 20_000 }, ackP99Ms: { median: 5, min: 4, max: 6 } });
    expect(s.cpuSeconds).toEqual({ kiseki: { median: 10, min: 10, max: 10 }, client: { median: 2, min: 2, max: 2 } });
  });

  it('fails a configuration with a failed run or a count mismatch, never silently', () => {
    expect(summariseConfiguration('ingest-2', runs)).toMatchObject({ measured: 1, failed: 1, ok: false });
    expect(summariseConfiguration('ingest-1', runs)).toMatchObject({ measured: 1, countCheckFailures: 1, ok: false });
    expect(summariseConfiguration('ingest-3', runs)).toMatchObject({ measured: 0, eventsPerSec: null, ok: false });
  });

  it('prints one row per configuration, the skipped ones with the install hint, and every failure', () => {
    const scenario = parseScenario({ name: 'cluster-ingest', description: 'd', kind: 'steady', agents: 500, eventsPerAgentPerSec: 40, detectionRate: 0, durationSec: 20, cluster: { configurations: ['embedded', 'ingest-1', 'ingest-2'] } });
    const c = {
      scenario: 'cluster-ingest',
      config: scenario,
      reps: 3,
      agents: 500,
      clientProcesses: 2,
      offeredEventsPerSec: 20_000,
      wallSec: 100,
      machine: { nproc: 2, cpuModel: 'cpu', node: 'v20', loadAverageAtStart: 1, commit: 'abc1234' },
      configurations: (['embedded', 'ingest-1', 'ingest-2'] as const).map((x) => summariseConfiguration(x, runs)),
      skipped: [{ configuration: 'ingest-4', reason: 'nats-server is not installed: apt-get install nats-server' }],
      runs,
      notes: [],
    } as unknown as ClusterComparison;
    const text = formatClusterComparison(c);
    expect(text).toMatch(/embedded\s+19,500 \(19,000–20,000\)\s+5 \(4–6\)\s+ok 3\/3\s+kiseki 10, client 2/);
    expect(text).toMatch(/cluster, 1 ingest node\s+17,000\s+12\s+FAILED 1 mismatch/);
    expect(text).toMatch(/cluster, 2 ingest nodes\s+18,000\s+9\s+FAILED 1 run/);
    expect(text).toContain('skipped: cluster, 4 ingest nodes: nats-server is not installed: apt-get install nats-server');
    expect(text).toContain('failed: cluster, 2 ingest nodes, repetition 2: ingest node 2 exited during the run');
    expect(text).toContain('count check failed: cluster, 1 ingest node, repetition 1: the stream holds 9 batches, 10 were acked');
  });
});

describe('cluster comparison: order and client processes', () => {
  it('reverses the order in every second repetition', () => {
    expect(repetitionOrder(['embedded', 'ingest-1', 'ingest-2'], 0)).toEqual(['embedded', 'ingest-1', 'ingest-2']);
    expect(repetitionOrder(['embedded', 'ingest-1', 'ingest-2'], 1)).toEqual(['ingest-2', 'ingest-1', 'embedded']);
  });

  it('uses at least as many client processes as the largest cluster has ingest nodes, the same for every configuration', () => {
    const base = { name: 'x', description: 'd', kind: 'steady', agents: 100, eventsPerAgentPerSec: 1, detectionRate: 0, durationSec: 1 };
    expect(comparisonClientProcesses(parseScenario({ ...base, cluster: { configurations: ['embedded', 'ingest-2'] } }))).toBe(2);
    expect(comparisonClientProcesses(parseScenario({ ...base, clientProcesses: 3, cluster: { configurations: ['ingest-2'] } }))).toBe(3);
    expect(comparisonClientProcesses(parseScenario({ ...base, agents: 20_000, cluster: { configurations: ['embedded'] } }))).toBe(3);
  });
});
