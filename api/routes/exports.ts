/**
 * Export routes (SPEC §6): list a tenant's downloads (daily archives and
 * log-spot jobs), follow a job's progress, start log-spot jobs, and download
 * files with HTTP range support so large archives resume after a cut.
 */
import { createReadStream, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';
import { jobFilePath, listJobs, readJob, type ExportJob } from '../../export/index.js';
import type { UserRecord } from '../../storage/index.js';
import { decodeCursor, defineRoute, encodeCursor, pageQuery, type ApiDeps, type Route } from '../route-kit.js';
import { exportsOf, requestSpotJob } from '../services.js';

/** A job as clients see it: file paths on the server stay private. */
export function jobView(job: ExportJob) {
  return {
    id: job.id,
    kind: job.kind,
    supportId: job.supportId,
    params: job.params,
    status: job.status,
    createdAt: job.createdAt,
    finishedAt: job.finishedAt ?? null,
    expiresAt: job.expiresAt,
    progress: job.progress ?? null,
    error: job.error ?? null,
    emptyDays: job.emptyDays ?? [],
    files: job.files.map((f) => ({ name: f.name, bytes: f.bytes, sha256: f.sha256, entries: f.entries, day: f.day ?? null, url: `/api/v1/exports/${job.id}/files/${encodeURIComponent(f.name)}` })),
  };
}

/** An export job the user may see; 404 for another tenant's or an unknown one. */
export function visibleJob(deps: ApiDeps, user: UserRecord, id: string): ExportJob {
  let job: ExportJob | undefined;
  try {
    job = readJob(exportsOf(deps).dataDir, id);
  } catch {
    job = undefined; // not a job id this server makes
  }
  if (job === undefined || (user.role !== 'operator' && job.supportId !== user.supportId)) throw new KisekiError('ERR_NOT_FOUND');
  return job;
}

/** Parses a single `bytes=` range against a file size; undefined means the whole file. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === '' && m[2] === '')) throw new KisekiError('ERR_RANGE_NOT_SATISFIABLE', { range: header, size });
  let start: number;
  let end: number;
  if (m[1] === '') {
    // Suffix range: the last N bytes.
    const n = Number(m[2]);
    if (n === 0) throw new KisekiError('ERR_RANGE_NOT_SATISFIABLE', { range: header, size });
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) throw new KisekiError('ERR_RANGE_NOT_SATISFIABLE', { range: header, size });
  return { start, end };
}

const spotBody = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('spot30'), supportId: z.string().min(1).max(64).optional(), from: z.string().regex(/^\d{4}-\d{2}-\d{2}$/), to: z.string().regex(/^\d{4}-\d{2}-\d{2}$/) }).strict(),
  z.object({ kind: z.literal('spot1y'), supportId: z.string().min(1).max(64).optional(), tmid: z.string().min(1).max(64), computer: z.string().min(1).max(256).optional() }).strict(),
]);

export const EXPORT_ROUTES: Route[] = [
  defineRoute({
    method: 'get',
    path: '/exports',
    summary: 'Downloads: daily archives and log-spot jobs with their files, newest first.',
    tag: 'exports',
    query: pageQuery.extend({ supportId: z.string().max(64).optional(), kind: z.enum(['daily', 'spot30', 'spot1y']).optional() }),
    responses: { 200: 'A page of export jobs' },
    handler({ c, deps, user, query }) {
      const { dataDir } = exportsOf(deps);
      const own = user.role === 'operator' ? null : user.supportId;
      if (own !== null && query.supportId !== undefined && query.supportId !== own) return c.json({ items: [], nextCursor: null });
      const scope = own ?? query.supportId;
      const after = decodeCursor(query.cursor);
      let jobs = listJobs(dataDir, scope ?? undefined).filter((j) => query.kind === undefined || j.kind === query.kind);
      if (typeof after?.[1] === 'string') {
        const i = jobs.findIndex((j) => j.id === after[1]);
        jobs = i < 0 ? [] : jobs.slice(i + 1);
      }
      const items = jobs.slice(0, query.limit).map(jobView);
      const more = jobs.length > query.limit;
      return c.json({ items, nextCursor: more && items.length > 0 ? encodeCursor([items.at(-1)!.createdAt, items.at(-1)!.id]) : null });
    },
  }),
  defineRoute({
    method: 'post',
    path: '/exports',
    summary: 'Start a log-spot job: 30 days of all devices (spot30) or everything of one device (spot1y).',
    tag: 'exports',
    roles: ['operator', 'admin'],
    body: spotBody,
    responses: { 202: 'Started; follow GET /exports/{id}', 400: 'Invalid request', 404: 'No such tenant or device' },
    async handler({ c, deps, user, body, from }) {
      return c.json(jobView(await requestSpotJob(deps, user, from, body)), 202);
    },
  }),
  defineRoute({
    method: 'get',
    path: '/exports/:id',
    summary: 'One export job: status, progress, files.',
    tag: 'exports',
    params: z.object({ id: z.string().min(1).max(160) }),
    responses: { 200: 'The job', 404: 'Not found' },
    handler: ({ c, deps, user, params }) => c.json(jobView(visibleJob(deps, user, params.id))),
  }),
  defineRoute({
    method: 'get',
    path: '/exports/:id/files/:name',
    summary: 'Download a file of an export job; supports Range requests (206 / 416).',
    tag: 'exports',
    params: z.object({ id: z.string().min(1).max(160), name: z.string().min(1).max(255) }),
    produces: 'application/zip',
    responses: { 200: 'The whole file', 206: 'The requested range', 404: 'Not found or expired', 416: 'Range not satisfiable' },
    async handler({ c, deps, user, params, audit }) {
      const job = visibleJob(deps, user, params.id);
      const path = jobFilePath(exportsOf(deps).dataDir, job.supportId, job.id, params.name, deps.clock.now());
      if (path === undefined) throw new KisekiError('ERR_NOT_FOUND');
      const size = statSync(path).size;
      const file = job.files.find((f) => f.name === params.name)!;
      const headers: Record<string, string> = {
        'accept-ranges': 'bytes',
        'content-type': params.name.endsWith('.zip') ? 'application/zip' : 'application/octet-stream',
        'content-disposition': `attachment; filename="${params.name.replace(/["\\\r\n]/g, '_')}"`,
        etag: `"${file.sha256}"`,
      };
      let range: { start: number; end: number } | undefined;
      try {
        range = parseRange(c.req.header('range'), size);
      } catch (err) {
        if (!(err instanceof KisekiError)) throw err;
        return c.body(null, 416, { ...headers, 'content-range': `bytes */${size}` });
      }
      // A conditional range for another version of the file gets the whole (current) file.
      const ifRange = c.req.header('if-range');
      if (range !== undefined && ifRange !== undefined && ifRange !== headers.etag) range = undefined;
      // Every read of a file is audited, whole or partial: a `Range: bytes=0-` is a whole download too.
      const whole = range === undefined || (range.start === 0 && range.end === size - 1);
      await audit('export.downloaded', `${job.id}/${params.name}`, job.supportId, {
        bytes: range === undefined ? size : range.end - range.start + 1,
        size,
        range: range === undefined ? null : `bytes=${range.start}-${range.end}`,
        whole,
      });
      if (whole || range === undefined) {
        return new Response(Readable.toWeb(createReadStream(path)) as ReadableStream, { status: 200, headers: { ...headers, 'content-length': String(size) } });
      }
      const stream = createReadStream(path, { start: range.start, end: range.end });
      return new Response(Readable.toWeb(stream) as ReadableStream, {
        status: 206,
        headers: { ...headers, 'content-length': String(range.end - range.start + 1), 'content-range': `bytes ${range.start}-${range.end}/${size}` },
      });
    },
  }),
];
