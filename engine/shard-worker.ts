/**
 * Entry point of a shard worker thread: opens the LMDB environment (shared
 * with the other threads of the process), recovers from its checkpoints, then
 * processes batches as the pool hands them over. State is persisted every
 * `flushIntervalMs`, and at once when a batch produced an alert, so a quick
 * report is stored within milliseconds of its batch.
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort, resourceLimits, workerData } from 'node:worker_threads';
import { systemClock } from '../core/clock.js';
import { openHotStore } from '../storage/index.js';
import { StreamingAnalytics } from './analytics.js';
import { Correlator } from './correlator.js';
import { FleetStage } from './fleet-stage.js';
import { PrevalenceStage } from './prevalence-stage.js';
import { ShardCore } from './shard-core.js';
import type { FromShard, ShardWorkerData, ToShard } from './shard-messages.js';
import { createSigmaRuleSource } from './sigma-rules.js';
import { SigmaStage } from './sigma-stage.js';
import { createThreatIntel } from './intel/index.js';
import { lowMemoryCollector, newSpaceBytes, QuietHeapTrimmer } from '../core/heap-trim.js';
import { GcPauseLog } from '../core/gc-pauses.js';

const PROGRESS_EVERY = 32;
const INTEL_CHECK_MS = 5_000;
/** How often the shard asks whether it was quiet enough to give its young generation back (core/heap-trim.ts). */
const HEAP_TRIM_CHECK_MS = 10_000;

const port = parentPort;
if (port === null) throw new Error('shard-worker must run in a worker thread');
const data = workerData as ShardWorkerData;
const store = openHotStore({ dataDir: data.dataDir, mapSizeBytes: data.mapSizeBytes });
const intel = createThreatIntel(data.intelDir);
/** Alerts created since the last flush: their batch's receipt, when the shard began it and when it was done (wall ms). */
let alertTimes: { recvAt: number; startAt: number; doneAt: number }[] = [];
/** When the batch being processed was taken off the queue (wall ms). */
let batchStartAt = 0;
let commandTmids = new Set<string>();
// Sigma: compiled once at start, again when a rule file changes (checked every reloadIntervalMs).
const sigmaSource = data.sigma === undefined ? undefined : createSigmaRuleSource(data.sigma);
const sigma = sigmaSource === undefined ? undefined : new SigmaStage({ store, clock: systemClock });
if (sigma !== undefined) sigma.setMatcher(sigmaSource!.load(sigma.resolver).matcher);
// Fleet prevalence (issue 13): recorded from every batch, weighed by the verdict.
const prevalence = new PrevalenceStage({ store, ...(data.prevalence === undefined ? {} : { policy: data.prevalence }) });
const correlator = new Correlator({
  ...(sigma === undefined ? {} : { sigma }),
  prevalence,
  store,
  intel,
  clock: systemClock,
  revisionWindowMs: data.revisionWindowMs,
  maxDevicesInMemory: data.maxDevicesInMemory,
  ...(data.deviceStateBudgetBytes === undefined ? {} : { deviceStateBudgetBytes: data.deviceStateBudgetBytes }),
  onAlert: (_alert, recvAt) => {
    if (recvAt !== undefined) alertTimes.push({ recvAt, startAt: batchStartAt, doneAt: 0 });
  },
  onCommand: (tmid) => commandTmids.add(tmid),
});
// Log tuning and USB control (issue 16) run before counting and correlation.
const fleet = new FleetStage({ store, clock: systemClock, ...(data.fleetPolicyRefreshMs === undefined ? {} : { refreshMs: data.fleetPolicyRefreshMs }) });
const analytics = data.analytics === true ? new StreamingAnalytics({ store, clock: systemClock, intel }) : undefined;
const core = new ShardCore({
  store,
  index: data.index,
  workers: data.workers,
  correlator,
  fleet,
  stateSnapshotIntervalMs: data.stateSnapshotIntervalMs,
  ...(analytics === undefined ? {} : { analytics }),
});

function send(msg: FromShard): void {
  port!.postMessage(msg);
}

let handled = 0;
let reportedEvents = 0;
let reportedInvalid = 0;
const reportedQuarantined: Record<string, number> = {};
let flushing: Promise<void> | undefined;
let flushAgain = false;

function reportProgress(): void {
  // Events count too, not only handled messages: a catch-up is one message that processes thousands of batches, and
  // kiseki_engine_events_total stood still for its whole length (the saturate benchmark read 0 events/s from busy shards).
  if (handled === 0 && core.stats.events === reportedEvents && core.stats.invalidEvents === reportedInvalid) return;
  let quarantined: Record<string, number> | undefined;
  for (const [reason, n] of Object.entries(core.stats.quarantined)) {
    const delta = n - (reportedQuarantined[reason] ?? 0);
    if (delta === 0) continue;
    (quarantined ??= {})[reason] = delta;
    reportedQuarantined[reason] = n;
  }
  send({
    type: 'progress',
    handled,
    lastLsn: core.lastLsn,
    events: core.stats.events - reportedEvents,
    invalidEvents: core.stats.invalidEvents - reportedInvalid,
    ...(quarantined === undefined ? {} : { quarantined }),
  });
  handled = 0;
  reportedEvents = core.stats.events;
  reportedInvalid = core.stats.invalidEvents;
}

function fail(err: unknown): void {
  send({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}

function flush(snapshot = false): Promise<void> {
  if (flushing !== undefined) {
    flushAgain = true;
    return flushing;
  }
  if (!core.needsFlush() && !snapshot) return Promise.resolve();
  const checkpoint = core.lastLsn;
  const times = alertTimes;
  alertTimes = [];
  const tmids = commandTmids;
  commandTmids = new Set();
  flushing = core
    .flush(snapshot)
    .then(() => {
      // The heap figure alone: process.memoryUsage() also reads the process's RSS from /proc, and took
      // 1.7 % of the shard thread (17 ms a second) in a saturate profile at 25k events/s.
      send({ type: 'flushed', checkpoint, heapUsedBytes: getHeapStatistics().used_heap_size, devicesInMemory: correlator.devicesInMemory() });
      if (times.length > 0) {
        const stored = Date.now();
        send({
          type: 'alerts',
          count: times.length,
          latenciesMs: times.map((t) => stored - t.recvAt),
          stagesMs: { queue: times.map((t) => t.startAt - t.recvAt), process: times.map((t) => t.doneAt - t.startAt), store: times.map((t) => stored - t.doneAt) },
        });
      }
      if (tmids.size > 0) send({ type: 'commands', tmids: [...tmids] });
    })
    .catch(fail)
    .finally(() => {
      flushing = undefined;
      if (flushAgain) {
        flushAgain = false;
        if (core.hasUrgentWrites()) void flush();
      }
    });
  return flushing;
}

try {
  const replayed = core.recover();
  await core.flush(true);
  send({ type: 'ready', lastLsn: core.lastLsn, replayed, youngGenerationMb: resourceLimits.maxYoungGenerationSizeMb ?? 0 });
} catch (err) {
  fail(err);
}

const gcPauses = new GcPauseLog();
const timer = setInterval(() => {
  reportProgress();
  const pauses = gcPauses.take();
  if (pauses.length > 0) send({ type: 'gc', pauses });
  void flush();
}, data.flushIntervalMs);
const intelTimer = setInterval(() => {
  intel.reloadIfChanged();
  // Tenants' Sigma settings and threshold rules changed through the API reach the shard within this period.
  sigma?.refreshSettings();
  analytics?.refreshRules();
}, INTEL_CHECK_MS);
const sigmaTimer =
  sigmaSource === undefined || sigma === undefined
    ? undefined
    : setInterval(() => {
        try {
          if (sigmaSource.changed()) sigma.setMatcher(sigmaSource.load(sigma.resolver).matcher);
        } catch {
          // A directory gone or unreadable mid-edit: keep the rules loaded; the next check tries again.
        }
      }, data.sigma!.reloadIntervalMs);
const collect = data.heapTrim === true ? await lowMemoryCollector() : undefined;
const trimmer = collect === undefined ? undefined : new QuietHeapTrimmer({ now: Date.now, newSpaceBytes, collect });
const trimTimer =
  trimmer === undefined
    ? undefined
    : setInterval(() => {
        // A failed collection changes nothing the shard keeps: the next quiet period tries again.
        trimmer.check(core.stats.events).catch(() => undefined);
      }, HEAP_TRIM_CHECK_MS);

/**
 * A catch-up (the pool skipped batches while this shard's queue was full) runs
 * in slices of at most CATCH_UP_SLICE_MS, with a flush between slices when an
 * alert waits: run whole, it kept every alert it made unstored, and so unseen
 * by the notifier, for up to 90 s at steady-1k. Messages that arrive meanwhile
 * wait in `inbox`: batches must be processed in lsn order.
 */
const CATCH_UP_SLICE_MS = data.catchUpSliceMs ?? 100;
/** Lsns read per catchUp() call inside a slice (the time check runs between calls). */
const CATCH_UP_STEP = 64;
let catchUpTo = 0;
const inbox: ToShard[] = [];

/** Times the alerts made by `work` (see alertTimes). */
function timed(work: () => void): void {
  batchStartAt = Date.now();
  const before = alertTimes.length;
  work();
  if (alertTimes.length > before) {
    const doneAt = Date.now();
    for (let i = before; i < alertTimes.length; i++) alertTimes[i]!.doneAt = doneAt;
  }
}

function continueCatchUp(): void {
  try {
    const deadline = performance.now() + CATCH_UP_SLICE_MS;
    do timed(() => core.catchUp(Math.min(catchUpTo, core.lastLsn + CATCH_UP_STEP)));
    while (core.lastLsn < catchUpTo && performance.now() < deadline);
  } catch (err) {
    fail(err);
    return;
  }
  if (core.hasUrgentWrites()) void flush();
  if (core.lastLsn < catchUpTo) {
    setImmediate(continueCatchUp);
    return;
  }
  catchUpTo = 0;
  // Caught up: what arrived meanwhile, in order, until a message starts another catch-up.
  while (inbox.length > 0 && catchUpTo === 0) handle(inbox.shift()!);
}

port.on('message', (msg: ToShard) => {
  if (catchUpTo > 0) inbox.push(msg);
  else handle(msg);
});

function handle(msg: ToShard): void {
  try {
    switch (msg.type) {
      case 'batch':
        timed(() => core.processBatch(msg.lsn, msg.tmid, new Uint8Array(msg.events), msg.recvAt));
        break;
      case 'catchup':
        if (msg.upTo > core.lastLsn) {
          catchUpTo = msg.upTo;
          if (++handled >= PROGRESS_EVERY) reportProgress();
          continueCatchUp();
          return;
        }
        break;
      case 'stop':
        clearInterval(timer);
        clearInterval(intelTimer);
        if (sigmaTimer !== undefined) clearInterval(sigmaTimer);
        if (trimTimer !== undefined) clearInterval(trimTimer);
        gcPauses.stop();
        reportProgress();
        void (async () => {
          while (flushing !== undefined) await flushing;
          await flush(true);
          await store.close();
          send({ type: 'stopped' });
          port!.close();
        })().catch(fail);
        return;
    }
  } catch (err) {
    fail(err);
    return;
  }
  // An alert is worth a flush of its own: the report is stored now, not at the next tick.
  if (core.hasUrgentWrites()) void flush();
  if (++handled >= PROGRESS_EVERY) reportProgress();
}
