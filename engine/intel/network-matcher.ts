/**
 * Network logs against threat intelligence: the consumer of the syslog
 * receiver's parsed records (ingest/syslog calls `onRecords` with each batch
 * it stored). Each record's destination and source IPs, domain and URL are
 * looked up in the intel index; a hit becomes a network-intel alert
 * (storage/intel-alerts.ts, which notifies through the feed in the same
 * transaction), linked to the endpoint process that made the connection
 * where an agent saw it:
 *  - process by port and time: the connection index (storage/net-conns.ts,
 *    filled by the shards from net.conn events) holds the local address and
 *    port of every connection; the one within `linkWindowMs` of the log's
 *    time, to the same remote address, is the evidence;
 *  - device by IP: otherwise a device of the tenant whose agent reported that
 *    address (hello facts) is named, without a process.
 * An agent's trail often arrives after the network device's log (agents
 * batch; the firewall streams), so alerts without a process are looked at
 * again by `relinkPending()` for `relinkForMs` after their creation, and a
 * link that raises the severity notifies again.
 *
 * Severity (`intelSeverity`) comes from the best hit's confidence, the action
 * the device took and whether the endpoint process is known; docs/INTEL.md
 * has the table.
 */
import { createHash } from 'node:crypto';
import type { EndpointConnEvidence, IntelIndicatorHit, NetworkIntelAlert, NetworkLogAction, NetworkLogRecord, SigmaSeverity } from '../../core/contracts.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { startTimerLoop, type TimerLoop } from '../../core/timer-loop.js';
import type { HotStore, NetConnEntry } from '../../storage/index.js';
import type { IntelEntry } from './intel-index.js';
import type { ThreatIntel } from './intel-dir.js';

/** Confidence bands of the severity table: ≥ 80 high, ≥ 50 medium, below low. */
export const HIGH_CONFIDENCE = 80;
export const MEDIUM_CONFIDENCE = 50;

const SEVERITIES: readonly SigmaSeverity[] = ['Information', 'Medium', 'Serious', 'Critical'];

/**
 * The severity of a network-intel hit: high confidence → Critical, medium →
 * Serious, low → Medium when the traffic went through (allowed, an IDS alert,
 * or unknown) and the endpoint process is known; one level lower without
 * the process; one more level lower when the device blocked the traffic.
 */
export function intelSeverity(input: { confidence: number; action: NetworkLogAction; endpointProcess: boolean }): SigmaSeverity {
  let level = input.confidence >= HIGH_CONFIDENCE ? 3 : input.confidence >= MEDIUM_CONFIDENCE ? 2 : 1;
  if (!input.endpointProcess) level--;
  if (input.action === 'blocked') level--;
  return SEVERITIES[Math.max(0, level)]!;
}

export interface NetworkIntelMatcherOptions {
  store: HotStore;
  intel: ThreatIntel;
  clock: Clock;
  logger: Logger;
  /** Largest gap between the log's time and the endpoint connection's, ms (default 120 000: clocks and batching). */
  linkWindowMs?: number;
  /** The same indicators and local address within this are counted as repeats of one alert, ms (default 3 600 000). */
  dedupWindowMs?: number;
  /** Alerts without a process are linked again for this long after creation, ms (default 900 000). */
  relinkForMs?: number;
}

/** Counters (monotonic). */
export interface NetworkIntelStats {
  records: number;
  hits: number;
  alerts: number;
  repeats: number;
  duplicates: number;
  linkedLater: number;
}

export interface NetworkIntelMatcher {
  /** Matches stored network-log records; resolves when their alerts are committed. */
  onRecords(records: readonly NetworkLogRecord[]): Promise<NetworkIntelAlert[]>;
  /** Looks again for the endpoint process of recent alerts without one; returns how many were linked. */
  relinkPending(): Promise<number>;
  /** Runs relinkPending, the intel reload check and the connection-index sweep every `intervalMs`. */
  start(intervalMs: number): void;
  stop(): Promise<void>;
  readonly stats: NetworkIntelStats;
}

/** The alert id of a record: the same for a redelivered line. */
export function networkIntelAlertId(r: NetworkLogRecord): string {
  const key = `${r.supportId}\u0000${r.ts}\u0000${r.srcIp ?? ''}:${r.srcPort ?? ''}\u0000${r.dstIp ?? ''}:${r.dstPort ?? ''}\u0000${r.raw}`;
  return `ni_${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
}

function hitOf(entry: IntelEntry, observed: string): IntelIndicatorHit {
  return {
    kind: entry.kind,
    observed,
    value: entry.value,
    source: entry.source,
    confidence: entry.confidence,
    labels: entry.labels,
    ...(entry.ref === undefined ? {} : { ref: entry.ref }),
    ...(entry.name === undefined ? {} : { name: entry.name }),
    ...(entry.validUntil === undefined ? {} : { validUntil: entry.validUntil }),
  };
}

/** Which end of the record is the customer's: the other end of the one that hit (the source when a name or URL hit). */
interface Ends {
  localIp: string | undefined;
  localPort: number | undefined;
  remoteIp: string | undefined;
  remotePort: number | undefined;
}

/** Creates the matcher; `onRecords` works at once, the timer only after start(). */
export function createNetworkIntelMatcher(options: NetworkIntelMatcherOptions): NetworkIntelMatcher {
  const { store, intel, clock } = options;
  const log = options.logger.child({ component: 'intel-network' });
  const linkWindowMs = options.linkWindowMs ?? 120_000;
  const dedupWindowMs = options.dedupWindowMs ?? 3_600_000;
  const relinkForMs = options.relinkForMs ?? 900_000;
  const stats: NetworkIntelStats = { records: 0, hits: 0, alerts: 0, repeats: 0, duplicates: 0, linkedLater: 0 };
  let loop: TimerLoop | undefined;

  function hitsOf(r: NetworkLogRecord): { hits: IntelIndicatorHit[]; ends: Ends } | undefined {
    const index = intel.index();
    const at = r.ts;
    const hits: IntelIndicatorHit[] = [];
    let remoteIsSource = false;
    if (r.dstIp !== undefined) for (const e of index.matchIp(r.dstIp, at)) hits.push(hitOf(e, r.dstIp));
    if (r.srcIp !== undefined) {
      const inbound = index.matchIp(r.srcIp, at);
      if (inbound.length > 0 && hits.length === 0) remoteIsSource = true;
      for (const e of inbound) hits.push(hitOf(e, r.srcIp));
    }
    if (r.domain !== undefined) for (const e of index.matchDomain(r.domain, at)) hits.push(hitOf(e, r.domain));
    if (r.url !== undefined) {
      for (const e of index.matchUrl(r.url, at)) hits.push(hitOf(e, r.url));
      if (r.domain === undefined) for (const e of index.matchDomain(r.url, at)) hits.push(hitOf(e, r.url));
    }
    if (hits.length === 0) return undefined;
    const ends: Ends = remoteIsSource
      ? { localIp: r.dstIp, localPort: r.dstPort, remoteIp: r.srcIp, remotePort: r.srcPort }
      : { localIp: r.srcIp, localPort: r.srcPort, remoteIp: r.dstIp, remotePort: r.dstPort };
    return { hits, ends };
  }

  /** The endpoint connection behind a record, nearest in time, to the same remote address when the log names it. */
  function connectionOf(supportId: string, ends: Ends, ts: number): NetConnEntry | undefined {
    if (ends.localIp === undefined || ends.localPort === undefined) return undefined;
    let best: NetConnEntry | undefined;
    for (const c of store.netConns.find(supportId, ends.localIp, ends.localPort, ts - linkWindowMs, ts + linkWindowMs)) {
      if (ends.remoteIp !== undefined && c.rip !== ends.remoteIp) continue;
      if (ends.remotePort !== undefined && c.rport !== ends.remotePort) continue;
      if (best === undefined || Math.abs(c.ts - ts) < Math.abs(best.ts - ts)) best = c;
    }
    return best;
  }

  function deviceByIp(supportId: string, ip: string | undefined): { tmid: string; computer: string } | undefined {
    if (ip === undefined) return undefined;
    // Hits are rare: a scan of the tenant's devices per hit costs less than an index kept on every hello.
    for (const d of store.devices.scanTenant(supportId)) if (d.ips.includes(ip)) return { tmid: d.tmid, computer: d.computer };
    return undefined;
  }

  function evidenceOf(c: NetConnEntry): EndpointConnEvidence {
    const { supportId: _s, ...rest } = c;
    return { ...rest, computer: store.devices.get(c.tmid)?.computer ?? '' };
  }

  function endpointSide(supportId: string, ends: Ends, ts: number): Pick<NetworkIntelAlert, 'device' | 'endpoint'> {
    const conn = connectionOf(supportId, ends, ts);
    if (conn !== undefined) {
      const endpoint = evidenceOf(conn);
      return { device: { tmid: conn.tmid, computer: endpoint.computer, matchedBy: 'connection' }, endpoint };
    }
    const device = deviceByIp(supportId, ends.localIp);
    return device === undefined ? {} : { device: { ...device, matchedBy: 'device-ip' } };
  }

  async function onRecords(records: readonly NetworkLogRecord[]): Promise<NetworkIntelAlert[]> {
    stats.records += records.length;
    const created: NetworkIntelAlert[] = [];
    let refreshed = false;
    for (const r of records) {
      const found = hitsOf(r);
      if (found === undefined) continue;
      stats.hits++;
      if (!refreshed) {
        // The shards commit connections from other threads: read the latest.
        store.refreshReads();
        refreshed = true;
      }
      const side = endpointSide(r.supportId, found.ends, r.ts);
      const confidence = Math.max(...found.hits.map((h) => h.confidence));
      const now = clock.now();
      const alert: NetworkIntelAlert = {
        id: networkIntelAlertId(r),
        supportId: r.supportId,
        createdAt: now,
        at: r.ts,
        severity: intelSeverity({ confidence, action: r.action, endpointProcess: side.endpoint !== undefined }),
        confidence,
        hits: found.hits,
        network: r,
        ...side,
        ...(side.endpoint === undefined ? {} : { linkedAt: now }),
        repeats: 0,
      };
      const dedupKey = `${[...new Set(found.hits.map((h) => h.value))].sort().join(',')}\u0000${found.ends.localIp ?? ''}`;
      const { outcome } = await store.intelAlerts.record(alert, dedupKey, dedupWindowMs);
      if (outcome === 'created') {
        stats.alerts++;
        created.push(alert);
      } else if (outcome === 'repeat') stats.repeats++;
      else stats.duplicates++;
    }
    return created;
  }

  async function relinkPending(): Promise<number> {
    const now = clock.now();
    await store.intelAlerts.dropUnlinkedBefore(now - relinkForMs);
    const pending = store.intelAlerts.unlinked(now - relinkForMs);
    if (pending.length === 0) return 0;
    store.refreshReads();
    let linked = 0;
    for (const a of pending) {
      const found = hitsOf(a.network);
      const ends: Ends = found?.ends ?? { localIp: a.network.srcIp, localPort: a.network.srcPort, remoteIp: a.network.dstIp, remotePort: a.network.dstPort };
      const conn = connectionOf(a.supportId, ends, a.at);
      if (conn === undefined) continue;
      const endpoint = evidenceOf(conn);
      await store.intelAlerts.link(
        a.id,
        {
          device: { tmid: conn.tmid, computer: endpoint.computer, matchedBy: 'connection' },
          endpoint,
          linkedAt: now,
          severity: intelSeverity({ confidence: a.confidence, action: a.network.action, endpointProcess: true }),
        },
        now,
      );
      linked++;
    }
    stats.linkedLater += linked;
    return linked;
  }

  const round = async (): Promise<void> => {
    if (intel.reloadIfChanged()) log.info({ counts: intel.counts() }, 'Threat intelligence was reloaded.');
    await relinkPending();
    // Connections older than any log still waiting for a link are of no more use.
    await store.netConns.sweepBefore(clock.now() - relinkForMs - 2 * linkWindowMs - 24 * 3600_000);
  };

  return {
    onRecords,
    relinkPending,
    stats,
    start(intervalMs) {
      loop = startTimerLoop(round, intervalMs, (err) => log.error({ err }, 'A network-intel round failed; the next one retries.'), intervalMs);
    },
    async stop() {
      await loop?.stop();
    },
  };
}
