/**
 * Runs one labelled case in-process, the way `kiseki import` followed by
 * `kiseki detect` would on a server, without the server: the trail files are
 * read and mapped by the import's own reader and mapper (ingest/import), each
 * host becomes an enrolled device of a fresh tenant in a fresh temporary data
 * directory, its events are numbered into batches exactly as the import
 * client numbers them, committed to the batch log and processed by a real
 * ShardCore + Correlator (+ the Sigma default pack); then the detection is
 * raised as `kiseki detect` raises it (same event, same enrichment from the
 * trail) and the quick report the engine stored is read back. No network, no
 * worker threads, no timing: the same inputs give the same report.
 */
import { encode } from '@msgpack/msgpack';
import { accessSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compress } from 'zstd-napi';
import { createManualClock } from '../../core/clock.js';
import type { QuickReport, TrailEvent } from '../../core/contracts.js';
import { KisekiError } from '../../core/errors.js';
import { buildTrails, enrichDetection, hostKey, type HostTrail, type InputEvent } from '../../ingest/import/import-trail.js';
import { planBatches } from '../../ingest/import/import-client.js';
import { factsFor } from '../../ingest/import/command-support.js';
import { detectionEvent } from '../../ingest/import/detect-command.js';
import { mapRecord } from '../../ingest/import/sysmon-mapper.js';
import { readRecords } from '../../ingest/import/sysmon-reader.js';
import { expandInputs } from '../../ingest/import/evtx/evtx-source.js';
import { openHotStore } from '../../storage/index.js';
import { alertIdForDetection, Correlator } from '../correlator.js';
import { renderReportText } from '../report-text.js';
import { ShardCore } from '../shard-core.js';
import { createSigmaRuleSource } from '../sigma-rules.js';
import { createSigmaMatcher, type CompiledRule } from '../sigma/index.js';
import { SigmaStage } from '../sigma-stage.js';
import { createThreatIntel } from '../intel/index.js';
import type { EvalCase } from './eval-cases.js';

/** Batches processed between two shard flushes while importing (flush cost vs memory). */
const FLUSH_EVERY = 16;

/**
 * Where the per-case data directories go: a RAM-backed /dev/shm where there is
 * one, because every batch commit waits for an fsync and a case is thrown away
 * after reading one report (on a disk the syncs were 80 % of a case's time);
 * else the system's temporary folder.
 */
export function evalTmpRoot(): string {
  try {
    if (statSync('/dev/shm').isDirectory()) {
      accessSync('/dev/shm', constants.W_OK);
      return '/dev/shm';
    }
  } catch {
    // No /dev/shm (not Linux) or not writable: the ordinary temporary folder.
  }
  return tmpdir();
}

/** What running one case produced. */
export interface CaseRun {
  /** The device's events imported, and all hosts' events. */
  deviceEvents: number;
  totalEvents: number;
  hosts: string[];
  /** The detection as raised (with the seq, pg and sha256 it got). */
  detection: TrailEvent;
  alertId: string;
  /** The newest revision of the report, undefined when the engine made none (e.g. suppressed). */
  report: QuickReport | undefined;
  alertState: string | undefined;
  /** The report as `kiseki report` prints it (alert header, rules, sections), when there is an alert. */
  reportText: string | undefined;
  ms: number;
}

export interface RunOptions {
  /** Compiled Sigma rules shared by all cases (compiling the pack takes seconds); undefined: Sigma off. */
  sigmaRules?: readonly CompiledRule[];
  /** Threat intel folder (default: none, as on a fresh install). */
  intelDir?: string;
}

/** Compiles the Sigma default pack (and `dir` when given) once, for every case of a run. */
export function loadEvalSigmaRules(dir?: string): CompiledRule[] {
  const source = createSigmaRuleSource({ defaultPack: true, ...(dir === undefined ? {} : { dir }) });
  return [...source.load({ process: () => undefined }).rules];
}

/** Reads and maps every record of the case's files into host trails, as `kiseki import` does. */
export async function readCaseTrails(files: readonly string[]): Promise<HostTrail[]> {
  const input: InputEvent[] = [];
  for (const file of await expandInputs([...files])) {
    for await (const item of readRecords(file)) {
      if (!item.ok) continue;
      const mapped = mapRecord(item.record);
      if (!mapped.ok) continue;
      input.push({ host: mapped.host, event: mapped.event, order: input.length });
    }
  }
  return buildTrails(input);
}

/** The trail of `device`: the same name, or the name before the domain on either side (WS5 vs WS5.corp.local). */
export function findDeviceTrail(trails: readonly HostTrail[], device: string): HostTrail | undefined {
  const want = hostKey(device);
  const bare = (s: string) => s.split('.')[0]!;
  return trails.find((t) => hostKey(t.computer) === want) ?? trails.find((t) => bare(hostKey(t.computer)) === bare(want));
}

/** Runs one case; `files` are its resolved trail paths. */
export async function runCase(c: EvalCase, files: readonly string[], options: RunOptions = {}): Promise<CaseRun> {
  const started = performance.now();
  const trails = await readCaseTrails(files);
  const trail = findDeviceTrail(trails, c.device);
  if (trail === undefined) {
    throw new KisekiError('ERR_INVALID_INPUT', { reason: `case ${c.name}: no events of device ${c.device} in its files (hosts: ${trails.map((t) => t.computer).join(', ') || 'none'})` });
  }
  const lastTs = trail.events.reduce((m, e) => Math.max(m, e.ts), 0);
  const at = c.at === undefined ? lastTs : Date.parse(c.at);
  const dir = mkdtempSync(join(evalTmpRoot(), 'kiseki-eval-'));
  const store = openHotStore({ dataDir: dir });
  try {
    // The server's clock during the run: just after the detection, as when a trail is imported right away.
    const clock = createManualClock(at + 60_000);
    const { tenant } = await store.tenants.create({ supportId: 'EVAL', name: `eval ${c.name}`, now: clock.now() });
    const sigma = options.sigmaRules === undefined ? undefined : new SigmaStage({ store, clock });
    if (sigma !== undefined) sigma.setMatcher(createSigmaMatcher(options.sigmaRules!, { resolver: sigma.resolver }));
    const correlator = new Correlator({ store, intel: createThreatIntel(options.intelDir), clock, ...(sigma === undefined ? {} : { sigma }) });
    const core = new ShardCore({ store, index: 0, workers: 1, correlator, clock });
    core.recover();
    let lsn = 0;
    const commit = async (tmid: string, batch: { id: string; first: number; last: number; events: TrailEvent[] }) => {
      const bytes = encode(batch.events);
      lsn++;
      await store.log.commitBatches([{ lsn, record: { tmid, id: batch.id, sentAt: clock.now(), recvAt: clock.now(), first: batch.first, last: batch.last, n: batch.events.length, z: compress(bytes) } }]);
      core.processBatch(lsn, tmid, bytes, clock.now());
      if (lsn % FLUSH_EVERY === 0) await core.flush();
    };

    let deviceTmid = '';
    let nextSeq = 1;
    let total = 0;
    for (const t of trails) {
      const { device } = await store.devices.enroll(tenant, factsFor(t.computer), clock.now());
      for (const b of planBatches(device.tmid, t.events, 1)) await commit(device.tmid, b);
      total += t.events.length;
      if (t === trail) {
        deviceTmid = device.tmid;
        nextSeq = t.events.length + 1;
      }
    }
    // The detection, exactly as `kiseki detect` builds it.
    const threat = c.threat ?? 'eval';
    const detection = detectionEvent(deviceTmid, { path: c.path, ts: at, threat, ...(c.sha256 === undefined ? {} : { sha256: c.sha256 }) });
    enrichDetection(detection, trail.events);
    const [batch] = planBatches(deviceTmid, [detection], nextSeq);
    await commit(deviceTmid, batch!);
    await core.flush(true);
    store.refreshReads();
    const raised = batch!.events[0]!;
    const alertId = alertIdForDetection(store, deviceTmid, raised);
    const view = store.alerts.view(alertId);
    const report = view?.revisions.at(-1);
    return {
      deviceEvents: trail.events.length,
      totalEvents: total,
      hosts: trails.map((t) => t.computer),
      detection: raised,
      alertId,
      report,
      alertState: view?.alert.state,
      reportText: view === undefined ? undefined : renderReportText(view.alert, report, view.verdicts),
      ms: Math.round(performance.now() - started),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
