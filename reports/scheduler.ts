/**
 * The report scheduler the server runs: every `checkIntervalMs` it makes the
 * reports that are due and missing: each tenant's monthly report once the
 * JST month has ended, the weekly one once the JST week (Monday 00:00) has,
 * and an incident report for every reported alert whose effective verdict
 * is black (made again when an analyst, the engine or the customer added
 * something since). It also sweeps reports past their 13 months. Report ids
 * are deterministic, so a restart or a second tick never duplicates one.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { HotStore } from '../storage/index.js';
import { generateIncidentReport, generatePeriodicReport, reportId } from './generate.js';
import type { PdfRenderer } from './pdf.js';
import { previousPeriod } from './periods.js';
import type { ReportTemplates } from './templates.js';

export interface ReportSchedulerOptions {
  store: HotStore;
  pdf: PdfRenderer;
  /** The console's report templates. */
  templates: ReportTemplates;
  clock: Clock;
  logger: Logger;
  /** How often to look for due reports, ms (default 60 000). */
  checkIntervalMs?: number;
  /** Black alerts older than this get no new incident report, ms (default 35 days). */
  incidentLookBackMs?: number;
  /** Which periodic reports to make (default both). */
  kinds?: ('monthly' | 'weekly')[];
  /**
   * Incident reports made per round at most (default 10), newest alert first;
   * the rest wait for the next rounds. Each is a Chromium render and a PDF
   * stored: a storm of black alerts (10 a second in the `report-latency`
   * benchmark, three in four of them black) rendered all at once held both
   * cores and the disk, and the ingest ack p99 tripled.
   */
  incidentReportsPerRound?: number;
  /**
   * True while the service is under load (the service: its own CPU use over the last round). Reports
   * wait then, up to {@link MAX_REPORT_DEFERRAL_MS}: a render is a Chromium page printing for seconds,
   * and on the 2-core VM ten incident renders a minute pushed ingest's ack p99 over 100 ms (up to 513 ms)
   * for most of the ~30 s they took, at nice 10 and even at SCHED_IDLE (docs/REPORTS.md, "Under load").
   */
  busy?: () => boolean;
}

/** Reports wait for a quieter round at most this long (ms): then they are made whatever the load. */
export const MAX_REPORT_DEFERRAL_MS = 3_600_000;

export interface ReportRound {
  generated: string[];
  swept: number;
  /** Incident reports due but left for later rounds (over `incidentReportsPerRound`, or the service busy). */
  incidentsDeferred: number;
  /** True when the round made nothing because the service was busy (see `busy`). */
  heldForLoad: boolean;
}

export interface ReportScheduler {
  /** One round now (what the timer runs). */
  runOnce(): Promise<ReportRound>;
  start(): void;
  stop(): Promise<void>;
}

export function createReportScheduler(options: ReportSchedulerOptions): ReportScheduler {
  const { store, clock } = options;
  const log = options.logger.child({ component: 'report-scheduler' });
  const kinds = options.kinds ?? ['monthly', 'weekly'];
  const lookBack = options.incidentLookBackMs ?? 35 * 86_400_000;
  const perRound = Math.max(1, options.incidentReportsPerRound ?? 10);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  /** When rounds started waiting for the service to be less busy (undefined: not waiting). */
  let busySince: number | undefined;

  /** The last time anything an incident report prints changed. */
  const lastChange = (alertId: string): number => {
    const view = store.alerts.view(alertId);
    if (view === undefined) return 0;
    const times = [view.alert.createdAt, ...view.verdicts.map((v) => v.at), ...view.comments.map((c) => c.at), ...store.answers.of(alertId).map((a) => a.at)];
    return Math.max(...times);
  };

  async function runOnce(): Promise<ReportRound> {
    const now = clock.now();
    const ctx = { store, pdf: options.pdf, clock, templates: options.templates };
    const generated: string[] = [];
    // Asked every round, so the service's measure covers the time since the last one.
    const busy = options.busy?.() === true;
    if (busy) busySince ??= now;
    else busySince = undefined;
    const hold = busySince !== undefined && now - busySince < MAX_REPORT_DEFERRAL_MS;
    for (const supportId of hold ? [] : store.tenants.ids()) {
      for (const kind of kinds) {
        const period = previousPeriod(kind, now);
        // A tenant created after the period has nothing to report for it.
        const tenant = store.tenants.get(supportId);
        if (tenant === undefined || tenant.createdAt >= period.end) continue;
        if (store.periodicReports.get(reportId(supportId, kind, period.label)) !== undefined) continue;
        generated.push((await generatePeriodicReport(ctx, supportId, period)).id);
      }
    }
    // The due alerts are listed first, with no await inside the scan: an LMDB read snapshot held across the
    // renders keeps every page freed meanwhile from reuse, and the file grew by 350 MB in a 2-minute benchmark.
    const due: string[] = [];
    let incidentsDeferred = 0;
    for (const a of store.alerts.scanAll()) {
      if (a.createdAt < now - lookBack) break;
      if (a.verdict !== 'black' || a.state !== 'reported') continue;
      const existing = store.periodicReports.get(reportId(a.supportId, 'incident', a.id));
      if (existing !== undefined && existing.createdAt >= lastChange(a.id)) continue;
      if (due.length < perRound && !hold) due.push(a.id);
      else incidentsDeferred++;
    }
    for (const id of due) {
      const r = await generateIncidentReport(ctx, id);
      if (r !== undefined) generated.push(r.id);
    }
    const swept = await store.periodicReports.sweep(now);
    if (generated.length > 0 || swept > 0 || incidentsDeferred > 0) log.info({ generated: generated.length, swept, incidentsDeferred, heldForLoad: hold }, 'Reports generated and expired ones swept.');
    return { generated, swept, incidentsDeferred, heldForLoad: hold };
  }

  return {
    runOnce,
    start() {
      const interval = options.checkIntervalMs ?? 60_000;
      const loop = (): void => {
        running = runOnce()
          .catch((err: unknown) => log.error({ err }, 'A report round failed; the next one retries.'))
          .finally(() => {
            if (timer !== undefined) timer = setTimeout(loop, interval);
          });
      };
      timer = setTimeout(loop, 0);
    },
    async stop() {
      const t = timer;
      timer = undefined;
      if (t !== undefined) clearTimeout(t);
      await running;
    },
  };
}
