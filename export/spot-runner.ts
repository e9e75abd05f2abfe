/**
 * A log-spot request as a job: recorded in `job.json` when it starts
 * (status `running`, with progress written every few seconds so another
 * process, e.g. the API, can poll it), built on the export pool, then marked
 * `done` with its files or `failed` with the reason. Used by `kiseki export
 * spot30/spot1y` and meant for the API's export routes.
 */
import { KisekiError } from '../core/errors.js';
import type { HotStore } from '../storage/index.js';
import { DAY_MS } from './collection-day.js';
import type { ExportConfig } from './config.js';
import type { ExportProgress } from './day-archive.js';
import type { ExportRunner } from './export-pool.js';
import { jobOwner, newJobId, writeJob, type ExportJob } from './jobs.js';
import { spot30Problem } from './spot-jobs.js';

export type SpotRequest = { kind: 'spot30'; from: string; to: string } | { kind: 'spot1y'; tmid: string; computer?: string };

export interface StartSpotJobOptions {
  store: HotStore;
  dataDir: string;
  runner: ExportRunner;
  config: Readonly<ExportConfig>;
  now: number;
  supportId: string;
  request: SpotRequest;
  onProgress?: (p: ExportProgress) => void;
  signal?: AbortSignal;
  /** How often progress is written to job.json (default 2 s). */
  progressWriteIntervalMs?: number;
}

/**
 * Checks the request (tenant isolation included: a TMID of another tenant is
 * "no such device"), writes the job as `running` and starts it. `job` is the
 * record as first written; `done` resolves with the final record (`done` or
 * `failed`; it never rejects).
 * @throws KisekiError ERR_INVALID_INPUT for a bad request, ERR_TENANT_NOT_FOUND for an unknown tenant.
 */
export function startSpotJob(options: StartSpotJobOptions): { job: ExportJob; done: Promise<ExportJob> } {
  const { store, dataDir, config, now, supportId, request } = options;
  if (store.tenants.get(supportId) === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId });
  let params: Record<string, string>;
  if (request.kind === 'spot30') {
    const problem = spot30Problem(request.from, request.to, now);
    if (problem !== undefined) throw new KisekiError('ERR_INVALID_INPUT', { reason: problem });
    params = { from: request.from, to: request.to };
  } else {
    const device = store.devices.get(request.tmid);
    if (device === undefined || device.supportId !== supportId) throw new KisekiError('ERR_INVALID_INPUT', { reason: `no device ${request.tmid} in tenant ${supportId}` });
    if (request.computer !== undefined && request.computer !== device.computer) {
      throw new KisekiError('ERR_INVALID_INPUT', { reason: `device ${request.tmid} is named ${device.computer}, not ${request.computer}` });
    }
    params = { tmid: request.tmid, computer: device.computer };
  }
  const job: ExportJob = {
    id: newJobId(request.kind, supportId, now),
    kind: request.kind,
    supportId,
    params,
    status: 'running',
    createdAt: now,
    expiresAt: now + config.exportRetentionDays * DAY_MS,
    files: [],
    owner: jobOwner(),
  };
  writeJob(dataDir, job);
  const first = { ...job };
  const every = options.progressWriteIntervalMs ?? 2000;
  let lastWrite = 0;
  const onProgress = (p: ExportProgress): void => {
    options.onProgress?.(p);
    const at = Date.now();
    if (at - lastWrite < every) return;
    lastWrite = at;
    writeJob(dataDir, { ...job, progress: { ...p, at } });
  };
  const base = { dataDir, supportId, jobId: job.id, now, deflateLevel: config.deflateLevel, coldRetentionDays: config.coldRetentionDays };
  const run =
    request.kind === 'spot30'
      ? options.runner.run({ type: 'spot30', ...base, from: request.from, to: request.to }, { onProgress, ...(options.signal === undefined ? {} : { signal: options.signal }) })
      : options.runner.run({ type: 'spot1y', ...base, tmid: request.tmid }, { onProgress, ...(options.signal === undefined ? {} : { signal: options.signal }) });
  const done = run.then(
    (r) => {
      const final: ExportJob = { ...job, status: 'done', finishedAt: Date.now(), files: r.files, emptyDays: r.emptyDays, partialDays: r.partialDays };
      writeJob(dataDir, final);
      return final;
    },
    (err: unknown) => {
      const final: ExportJob = { ...job, status: 'failed', finishedAt: Date.now(), error: err instanceof Error ? err.message : String(err) };
      writeJob(dataDir, final);
      return final;
    },
  );
  return { job: first, done };
}
