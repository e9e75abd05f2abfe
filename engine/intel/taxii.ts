/**
 * A TAXII 2.1 client that polls collections into the intel directory. Per
 * server: discovery (`GET <url>`: `api_roots`, `default`; a URL that already
 * is an API root is used as is) → `GET <api root>/collections/` (the
 * collection by id or title) → `GET …/collections/<id>/objects/` with
 * `added_after` set to the last poll's `X-TAXII-Date-Added-Last`, following
 * `more` / `next` pages. Basic auth or a bearer token.
 *
 * What a poll got is merged (by object id, newest `modified` wins; indicators
 * past `valid_until` dropped) into `taxii/<name>.json`, written under a
 * temporary name and renamed, so the shards and the network matcher pick it
 * up through the intel directory's reload; the `added_after` cursor is kept
 * beside it in `taxii/<name>.cursor`. A failed poll leaves both as they were.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../core/clock.js';
import { KisekiError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { startTimerLoop, type TimerLoop } from '../../core/timer-loop.js';

const TAXII_ACCEPT = 'application/taxii+json;version=2.1';

/** One TAXII 2.1 server and collection to poll. */
export interface TaxiiServerConfig {
  /** Names the files (`taxii/<name>.json`) and the entries' source (`taxii:<name>`): letters, digits, `-`, `_`. */
  name: string;
  /** Discovery URL (`https://host/taxii2/`) or an API root URL. */
  url: string;
  /** Collection id or title. */
  collection: string;
  username?: string;
  password?: string;
  /** Bearer token (instead of basic auth). */
  token?: string;
  /** Objects per page asked (`limit`), default 1000. */
  pageSize?: number;
}

export interface TaxiiPollResult {
  objects: Record<string, unknown>[];
  /** The cursor for the next poll (`X-TAXII-Date-Added-Last` of the last page), or the one given. */
  addedAfter: string | undefined;
  pages: number;
}

function headersOf(server: TaxiiServerConfig): Record<string, string> {
  const h: Record<string, string> = { accept: TAXII_ACCEPT };
  if (server.token !== undefined) h.authorization = `Bearer ${server.token}`;
  else if (server.username !== undefined) h.authorization = `Basic ${Buffer.from(`${server.username}:${server.password ?? ''}`).toString('base64')}`;
  return h;
}

const withSlash = (u: string): string => (u.endsWith('/') ? u : `${u}/`);

async function getJson(doFetch: typeof fetch, server: TaxiiServerConfig, url: string, timeoutMs: number): Promise<{ body: Record<string, unknown>; headers: Headers }> {
  const res = await doFetch(url, { headers: headersOf(server), signal: AbortSignal.timeout(timeoutMs) });
  if (res.status < 200 || res.status >= 300) {
    await res.body?.cancel();
    throw new KisekiError('ERR_INTEL_FEED', { server: server.name, reason: `HTTP ${res.status}`, url: new URL(url).pathname });
  }
  const body = (await res.json()) as unknown;
  if (typeof body !== 'object' || body === null) throw new KisekiError('ERR_INTEL_FEED', { server: server.name, reason: 'the answer is not a JSON object' });
  return { body: body as Record<string, unknown>, headers: res.headers };
}

/**
 * Polls one collection for the objects added after `addedAfter`.
 * @throws KisekiError ERR_INTEL_FEED when the server answers an error, the collection is missing or unreadable.
 */
export async function pollTaxiiCollection(server: TaxiiServerConfig, addedAfter: string | undefined, options: { fetch?: typeof fetch; timeoutMs?: number } = {}): Promise<TaxiiPollResult> {
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const first = await getJson(doFetch, server, server.url, timeoutMs);
  let apiRoot = withSlash(server.url);
  if (Array.isArray(first.body.api_roots)) {
    const root = typeof first.body.default === 'string' ? first.body.default : first.body.api_roots[0];
    if (typeof root !== 'string') throw new KisekiError('ERR_INTEL_FEED', { server: server.name, reason: 'the discovery answer names no API root' });
    apiRoot = withSlash(new URL(root, server.url).href);
  }
  const { body: list } = await getJson(doFetch, server, `${apiRoot}collections/`, timeoutMs);
  const collections = Array.isArray(list.collections) ? (list.collections as Record<string, unknown>[]) : [];
  const col = collections.find((c) => c.id === server.collection) ?? collections.find((c) => c.title === server.collection);
  if (col === undefined || typeof col.id !== 'string') throw new KisekiError('ERR_INTEL_FEED', { server: server.name, reason: 'the collection is not listed', collection: server.collection });
  if (col.can_read === false) throw new KisekiError('ERR_INTEL_FEED', { server: server.name, reason: 'the collection is not readable with these credentials', collection: server.collection });
  const objects: Record<string, unknown>[] = [];
  let cursor = addedAfter;
  // Pages followed by `next` repeat the first request's filter; without `next`, the window moves.
  let filter = addedAfter;
  let next: string | undefined;
  let pages = 0;
  for (;;) {
    const q = new URLSearchParams({ limit: String(server.pageSize ?? 1000) });
    if (filter !== undefined) q.set('added_after', filter);
    if (next !== undefined) q.set('next', next);
    const { body, headers } = await getJson(doFetch, server, `${apiRoot}collections/${encodeURIComponent(col.id)}/objects/?${q.toString()}`, timeoutMs);
    pages++;
    if (Array.isArray(body.objects)) objects.push(...(body.objects as Record<string, unknown>[]));
    const last = headers.get('x-taxii-date-added-last');
    if (last !== null && last !== '') cursor = last;
    if (body.more !== true) break;
    // Servers page with `next`; without one, `added_after` of the last object added moves the window.
    next = typeof body.next === 'string' ? body.next : undefined;
    if (next === undefined) {
      if (last === null) break;
      filter = last;
    }
    if (pages >= 10_000) break;
  }
  return { objects, addedAfter: cursor, pages };
}

/** Merges new objects into a stored list: by id, the newest `modified` wins; indicators past valid_until at `now` go. */
export function mergeStixObjects(stored: Record<string, unknown>[], added: Record<string, unknown>[], now: number): Record<string, unknown>[] {
  const byId = new Map<string, Record<string, unknown>>();
  for (const o of [...stored, ...added]) {
    if (typeof o.id !== 'string') continue;
    const prev = byId.get(o.id);
    if (prev === undefined || String(o.modified ?? '') >= String(prev.modified ?? '')) byId.set(o.id, o);
  }
  return [...byId.values()].filter((o) => typeof o.valid_until !== 'string' || !(Date.parse(o.valid_until) <= now));
}

export interface TaxiiPollerOptions {
  servers: readonly TaxiiServerConfig[];
  /** The intel directory; bundles go to `<intelDir>/taxii/`. */
  intelDir: string;
  clock: Clock;
  logger: Logger;
  fetch?: typeof fetch;
}

export interface TaxiiPoller {
  /** Polls every server once; resolves with objects received per server (failures logged, not thrown). */
  pollAll(): Promise<Record<string, number>>;
  start(intervalMs: number): void;
  stop(): Promise<void>;
}

/** Creates the poller; nothing runs before pollAll() or start(). */
export function createTaxiiPoller(options: TaxiiPollerOptions): TaxiiPoller {
  const dir = join(options.intelDir, 'taxii');
  const log = options.logger.child({ component: 'intel-taxii' });
  for (const s of options.servers) {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(s.name)) throw new KisekiError('ERR_CONFIG_INVALID', { reason: 'a TAXII server name must be 1-64 letters, digits, - or _', name: s.name });
  }
  let loop: TimerLoop | undefined;

  async function pollOne(s: TaxiiServerConfig): Promise<number> {
    const cursorFile = join(dir, `${s.name}.cursor`);
    const bundleFile = join(dir, `${s.name}.json`);
    let addedAfter: string | undefined;
    try {
      addedAfter = readFileSync(cursorFile, 'utf8').trim() || undefined;
    } catch {
      // First poll: everything.
    }
    const r = await pollTaxiiCollection(s, addedAfter, options.fetch === undefined ? {} : { fetch: options.fetch });
    let stored: Record<string, unknown>[] = [];
    try {
      const b = JSON.parse(readFileSync(bundleFile, 'utf8')) as { objects?: Record<string, unknown>[] };
      stored = Array.isArray(b.objects) ? b.objects : [];
    } catch {
      // No bundle yet.
    }
    mkdirSync(dir, { recursive: true });
    if (r.objects.length > 0 || stored.length === 0) {
      const merged = mergeStixObjects(stored, r.objects, options.clock.now());
      // A dot name: the intel directory reads *.json only, and the rename makes the new bundle appear whole.
      writeFileSync(join(dir, `.${s.name}.tmp`), JSON.stringify({ type: 'bundle', id: `bundle--taxii-${s.name}`, objects: merged }));
      renameSync(join(dir, `.${s.name}.tmp`), bundleFile);
    }
    if (r.addedAfter !== undefined) writeFileSync(cursorFile, `${r.addedAfter}\n`);
    return r.objects.length;
  }

  async function pollAll(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const s of options.servers) {
      try {
        out[s.name] = await pollOne(s);
      } catch (err) {
        log.warn({ server: s.name, err }, 'A TAXII poll failed; the next one retries from the same cursor.');
      }
    }
    return out;
  }

  return {
    pollAll,
    start(intervalMs) {
      // pollAll logs its own failures; nothing reaches onError.
      loop = startTimerLoop(pollAll, intervalMs, () => undefined);
    },
    async stop() {
      await loop?.stop();
    },
  };
}
