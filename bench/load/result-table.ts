/**
 * The short table a benchmark run prints at the end (the JSON file has
 * everything): the figures operators size deployments by, the count check,
 * the baselines and kiseki's share of them, and which targets were met; and
 * the cluster comparison's one row per configuration.
 */
import type { Spread } from '../spread.js';
import { configurationLabel, isMeasured, type ClusterComparison } from './cluster-compare.js';
import type { LatencyPercentiles } from './latency-histogram.js';
import type { BenchResult, ThreadPauses } from './runner.js';

const n0 = (n: number): string => Math.round(n).toLocaleString('en-US');
const lat = (l: LatencyPercentiles): string => `${l.p50} / ${l.p99} / ${l.p999} ms`;

/** The server's ack stages (bench/load/runner.ts, ackStagesBetween). */
function ackStages(st: NonNullable<BenchResult['window']['ackStagesMs']>): string {
  const one = (name: string, x: { p50: number; p99: number }): string => `${name} ${x.p50} / ${x.p99}`;
  return `${one('wait', st.wait)}, ${one('lock', st.lock)}, ${one('commit', st.commit)}, ${one('order', st.order)} ms`;
}

/** GC pauses by kind: count, p99 and total, e.g. `minor 57 × p99 18.2 ms (523 ms)`; `none` without any. */
export function gcPauses(gc: ThreadPauses['ingestGc']): string {
  const parts = Object.entries(gc).map(([kind, x]) => `${kind} ${n0(x.count)} × p99 ${x.p99Ms} ms (${n0(x.totalMs)} ms)`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

function row(label: string, value: string): string {
  return `  ${label.padEnd(34)} ${value}`;
}

/** Formats a result as a plain-text table (no colours, fits 110 columns). */
export function formatResultTable(r: BenchResult): string {
  const m = r.machine;
  const lines: string[] = [];
  lines.push(`kiseki bench: ${r.scenario} (${r.kind}), ${n0(r.agents)} agents, ${r.clientProcesses} client process(es), ${r.wallSec} s wall`);
  lines.push(`machine: ${m.nproc} × ${m.cpuModel}, Node ${m.node}, fd limit ${m.openFilesLimit}, load average ${m.loadAverageAtStart} at start (shared by server, generator, baselines), commit ${m.commit}`);
  const sustainedLabel = r.kind === 'saturate' ? 'sustained maximum (events/s)' : r.kind === 'burst' ? 'backlog flush (events/s)' : 'sustained events/s';
  lines.push(row(sustainedLabel, `${n0(r.eventsPerSec)}   (offered ${n0(r.offeredEventsPerSec)})`));
  lines.push(row('batches/s', n0(r.batchesPerSec)));
  lines.push(row(r.kind === 'saturate' ? 'ack p50/p99/p999 at 70 % (durable)' : 'ack p50/p99/p999 (durable)', lat(r.ackLatencyMs)));
  const stages = (r.atSeventyPercent ?? r.window).ackStagesMs;
  if (stages !== undefined) lines.push(row('  server side, p50 / p99', ackStages(stages)));
  const pauses = (r.atSeventyPercent ?? r.window).threadPauses;
  if (pauses !== undefined) {
    const loop = pauses.ingestLoopDelayMs === undefined ? '' : `event-loop delay p99 ${pauses.ingestLoopDelayMs.p99} / max ${pauses.ingestLoopDelayMs.max} ms; `;
    lines.push(row('  ingest thread', `${loop}GC ${gcPauses(pauses.ingestGc)}`));
    lines.push(row('  shard threads', `GC ${gcPauses(pauses.shardGc)}`));
  }
  lines.push(row('creation → ack p50/p99/p999', lat(r.deliveryLatencyMs)));
  lines.push(row('detection → quick report', r.reportLatencyMs ? `p50 ${r.reportLatencyMs.p50} ms, p99 ${r.reportLatencyMs.p99} ms (${r.reportLatencyMs.alerts} alerts)` : 'no alerts'));
  const seventy = r.atSeventyPercent?.reportLatencyMs;
  if (seventy) lines.push(row('  at 70 % of the maximum', `p50 ${seventy.p50} ms, p99 ${seventy.p99} ms (${seventy.alerts} alerts)`));
  const st = r.reportLatencyMs?.stages;
  if (st !== undefined) lines.push(row('  its stages, p50 / p99', `queue ${st.queue.p50} / ${st.queue.p99} ms, shard ${st.process.p50} / ${st.process.p99} ms, store ${st.store.p50} / ${st.store.p99} ms`));
  lines.push(row('server CPU / RSS', `${Math.round(r.server.cpuCores * 100)} % of one core, RSS ${r.server.rssMB} MB (anon ${r.server.rssAnonMB} MB, peak ${r.server.peakRssMB} MB)`));
  lines.push(row('user-space memory per agent', `${n0(r.server.memoryPerAgentBytes)} B (RssAnon growth / connected agents)`));
  lines.push(row('connect', `${n0(r.connect.welcomed)}/${n0(r.connect.agents)} agents in ${r.connect.seconds} s (${n0(r.connect.perSec)}/s, enrollment included)`));
  if (r.burst) {
    lines.push(row('reconnect storm', `${n0(r.burst.reconnect.welcomed)} agents back in ${r.burst.reconnect.seconds} s = ${n0(r.burst.reconnect.perSec)}/s`));
    lines.push(row('backlog', `${n0(r.burst.reconnect.backlogEvents)} events after ${r.burst.outageSec} s outage, flushed in ${r.burst.flushSec} s`));
    lines.push(row('ack p50/p99/p999 after the storm', lat(r.burst.after.ackLatencyMs)));
  }
  if (r.throughputCeiling !== undefined) lines.push(row('throughput ceiling (p99 ignored)', n0(r.throughputCeiling)));
  if (r.steps) {
    for (const [i, st] of r.steps.entries()) {
      const purpose = st.purpose === 'ramp' || st.purpose === undefined ? '' : ` (${st.purpose})`;
      const shards = st.shardEventsPerSec === undefined ? '' : `, shards ${n0(st.shardEventsPerSec)}${st.shardsKeptUp ? '' : ' (behind)'}`;
      const commit = st.ackStagesMs === undefined ? '' : ` (commit ${st.ackStagesMs.commit.p99})`;
      lines.push(row(`  step ${i + 1}${purpose}: offered ${n0(st.offeredEventsPerSec)}`, `acked ${n0(st.eventsPerSec)}${shards}, ack p99 ${st.ackLatencyMs.p99}${commit} ms, server ${st.serverCores} cores ${st.passed ? 'held' : 'missed'}`));
    }
  }
  const fa = r.fleetActivity;
  if (fa !== undefined) {
    const kinds = (m: Record<string, number>): string => Object.entries(m).map(([k, v]) => `${k} ${n0(v)}`).join(', ') || 'none';
    lines.push(row('fleet: agents', `${n0(fa.agents.dropouts)} dropouts, ${n0(fa.agents.logonBursts)} failed-logon bursts, ${n0(fa.agents.usbInsertions)} USB insertions, ${n0(fa.agents.upgrades)} upgrades`));
    lines.push(row('fleet: operational alerts', `${kinds(fa.opsAlerts)} (${n0(fa.opsAlertsResolved)} resolved)`));
    lines.push(row('fleet: USB alerts', kinds(fa.fleetAlerts)));
    if (fa.rollout) lines.push(row('fleet: rollout', `${fa.rollout.percent} % to ${fa.rollout.version}: ${n0(fa.rollout.targets)} targets; commands ${kinds(fa.rollout.upgrades)}; versions ${kinds(fa.rollout.versions)}`));
  }
  lines.push(row('client CPU', `${Math.round(r.client.cpuCores * 100)} % of one core over ${r.client.processes} process(es)`));
  const rejects = Object.entries(r.rejects);
  lines.push(row('rejects', rejects.length === 0 ? 'none' : rejects.map(([k, v]) => `${k} ${n0(v)}`).join(', ')));
  const c = r.countCheck;
  lines.push(
    row(
      'every acked batch stored',
      `${c.ok ? 'yes' : 'NO'}: ${n0(c.batchesAcked)} acked, ${n0(c.stored.batches)} stored (index ${n0(c.stored.batchIds)}), ${r.lostBatches} lost, ${c.stored.seqGaps} seq gaps`,
    ),
  );
  lines.push(
    row(
      'processed by the shards at stop',
      `${n0(c.stored.eventsProcessed)}/${n0(c.stored.events)} events${c.processedAll ? '' : ` (NOT all; ${n0(r.catchUpBatches)} catch-up batches)`}`,
    ),
  );
  const u = r.baselines.uws;
  const rs = r.baselines.rsyslog;
  if ('skipped' in u) lines.push(row('baseline: bare uWS', `skipped: ${u.skipped}`));
  else if (u.mode === 'throughput') lines.push(row('baseline: bare uWS (ack on receipt)', `${n0(u.eventsPerSec)} events/s, server ${u.serverCores} cores, client ${u.clientCores} cores → kiseki = ${r.ratios.vsUws ?? '-'} ×`));
  else lines.push(row('baseline: bare uWS, idle', `${n0(u.memoryPerAgentBytes)} B per connection, ${n0(u.connectPerSec)} connects/s → kiseki = ${r.ratios.memoryVsUws ?? '-'} × the memory`));
  if ('skipped' in rs) lines.push(row('baseline: rsyslog', `skipped: ${rs.skipped}`));
  else lines.push(row('baseline: rsyslog imtcp → omfile', `${n0(rs.linesPerSec)} lines/s (${rs.avgLineBytes} B lines, ${rs.rsyslogCores} cores) → kiseki = ${r.ratios.vsRsyslog ?? '-'} ×`));
  for (const t of r.targets) lines.push(row(`target: ${t.target}`, `${t.met === null ? 'n/a' : t.met ? 'met' : 'MISSED'} (${t.measured})`));
  for (const p of r.profile ?? []) {
    const top = p.top.slice(0, 5).map((t) => `${t.fn} ${Math.round(t.selfShare * 100)} %`).join(', ');
    lines.push(row(`profile ${p.file.slice(0, 24)}`, `busy ${Math.round(p.busyShare * 100)} % of ${p.seconds} s; ${top}`));
  }
  for (const note of r.notes) lines.push(`  note: ${note}`);
  return lines.join('\n');
}

/** Median (min–max), or a dash. */
function spreadText(x: Spread | null | undefined, digits = 0): string {
  if (x == null) return '—';
  const f = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: digits });
  return x.min === x.max ? f(x.median) : `${f(x.median)} (${f(x.min)}–${f(x.max)})`;
}

/**
 * The cluster comparison (cluster-compare.ts) as a table: one row per configuration with the median acked
 * events/s and ack p99 over the repetitions (min–max in brackets), the median CPU seconds of each process role in
 * the measured window, and the count check.
 */
export function formatClusterComparison(c: ClusterComparison): string {
  const m = c.machine;
  const lines: string[] = [];
  const window = c.config.durationSec;
  lines.push(
    `kiseki bench: ${c.scenario}, ${n0(c.agents)} agents × ${c.config.eventsPerAgentPerSec} events/s = ${n0(c.offeredEventsPerSec)} events/s offered, ${c.clientProcesses} client processes, ${c.reps} repetition${c.reps === 1 ? '' : 's'} (median, min–max), ${c.wallSec} s wall`,
  );
  lines.push(`machine: ${m.nproc} × ${m.cpuModel}, Node ${m.node}, load average ${m.loadAverageAtStart} at start, commit ${m.commit}`);
  const cols = (a: string, b: string, cc: string, d: string, e: string): string => `  ${a.padEnd(34)} ${b.padEnd(26)} ${cc.padEnd(20)} ${d.padEnd(13)} ${e}`;
  lines.push(cols('configuration', 'acked events/s', 'ack p99 ms', 'count check', `CPU s in the ${window} s window (median)`));
  for (const s of c.configurations) {
    const check = s.ok ? `ok ${s.measured}/${s.measured}` : `FAILED${s.failed > 0 ? ` ${s.failed} run(s)` : ''}${s.countCheckFailures > 0 ? ` ${s.countCheckFailures} mismatch(es)` : ''}`;
    const cpu = Object.entries(s.cpuSeconds)
      .map(([role, x]) => `${role} ${x.median}`)
      .join(', ');
    lines.push(cols(configurationLabel(s.configuration), spreadText(s.eventsPerSec), spreadText(s.ackP99Ms, 1), check, cpu || '—'));
  }
  for (const k of c.skipped) lines.push(`  skipped: ${configurationLabel(k.configuration)}: ${k.reason}`);
  for (const r of c.runs) {
    if (!isMeasured(r)) lines.push(`  failed: ${configurationLabel(r.configuration)}, repetition ${r.repetition}: ${r.error}`);
    else if (!r.countCheck.ok) lines.push(`  count check failed: ${configurationLabel(r.configuration)}, repetition ${r.repetition}: ${r.countCheck.mismatch ?? 'mismatch'}`);
  }
  for (const note of c.notes) lines.push(`  note: ${note}`);
  return lines.join('\n');
}
