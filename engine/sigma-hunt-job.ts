/**
 * Hunting history as a job (`POST /api/v1/sigma/hunts`): the same hunt as
 * `kiseki sigma hunt` (sigma-hunt.ts) over a tenant's cold archives and hot
 * store, run on the server's event loop a slice at a time (it yields every
 * few milliseconds, so the API keeps answering), its record and hits kept in
 * the store (storage/sigma-hunts.ts) for the client to poll and page. A job
 * cut by a server stop is marked `interrupted` at the next start.
 */
import { randomBytes } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import type { Clock } from '../core/clock.js';
import { KisekiError } from '../core/errors.js';
import { tenantTrailBatches } from '../export/index.js';
import type { HotStore, SigmaHuntHit, SigmaHuntRecord } from '../storage/index.js';
import { createSigmaHunter } from './sigma-hunt.js';
import { createSigmaRuleSource, type SigmaRuleSourceOptions } from './sigma-rules.js';
import { compileRule, type CompiledRule, type Refusal } from './sigma/index.js';

/** Hits kept per job; the count goes on past it, with `truncated` set. */
export const MAX_HUNT_HITS = 100_000;

/** Which rules a hunt runs. */
export type HuntRuleChoice = { kind: 'all' } | { kind: 'rule'; ruleId: string } | { kind: 'rules'; yaml: string };

export interface StartSigmaHuntOptions {
  store: HotStore;
  /** The data directory (cold archives under it). */
  dataDir: string;
  clock: Clock;
  supportId: string;
  requestedBy: string;
  sinceMs: number;
  untilMs?: number;
  choice: HuntRuleChoice;
  /** The server's rule set (default pack, `--sigma DIR`), for `all` and `rule`. */
  ruleSource: SigmaRuleSourceOptions;
  /** Longest run between two yields to the event loop, ms (default 20). */
  sliceMs?: number;
  /** How often the record's progress is written, ms (default 1,000). */
  progressWriteIntervalMs?: number;
}

/**
 * Compiles rules sent as YAML text (one rule, or several separated by `---`).
 * @returns the rules and the refused ones with their reasons.
 */
export function compileRulesText(text: string): { rules: CompiledRule[]; refused: Refusal[] } {
  const rules: CompiledRule[] = [];
  const refused: Refusal[] = [];
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((d, i) => {
    const file = `rules[${i}]`;
    if (d.errors.length > 0) {
      refused.push({ file, reason: 'yaml_error', detail: d.errors[0]!.message.split('\n')[0]! });
      return;
    }
    if (d.contents === null) return;
    const c = compileRule(d.toJS(), file);
    if (c.ok) rules.push(c.rule);
    else refused.push(c.refusal);
  });
  return { rules, refused };
}

function refusedView(r: Refusal): SigmaHuntRecord['ruleSet']['refused'][number] {
  return { ...(r.id === undefined ? {} : { id: r.id }), ...(r.title === undefined ? {} : { title: r.title }), reason: r.reason, detail: r.detail };
}

/** The rules of a choice. @throws KisekiError ERR_VALIDATION when none is usable. */
function rulesOf(choice: HuntRuleChoice, source: SigmaRuleSourceOptions): { rules: readonly CompiledRule[]; refused: Refusal[] } {
  if (choice.kind === 'rules') {
    const c = compileRulesText(choice.yaml);
    if (c.rules.length === 0) throw new KisekiError('ERR_VALIDATION', { field: 'rules', reason: 'no usable Sigma rule', refused: c.refused.map(refusedView) });
    return c;
  }
  const loaded = createSigmaRuleSource(source).load({ process: () => undefined });
  if (choice.kind === 'all') return { rules: loaded.rules, refused: [] };
  const one = loaded.rules.filter((r) => r.info.id === choice.ruleId);
  if (one.length === 0) throw new KisekiError('ERR_VALIDATION', { field: 'rule', reason: `no loaded rule has id ${choice.ruleId}` });
  return { rules: one, refused: [] };
}

/** A new hunt id: time-ordered, unguessable. */
function newHuntId(now: number): string {
  return `hunt_${now.toString(36)}_${randomBytes(6).toString('hex')}`;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Checks the request, stores the job as `running` and starts it. `job` is
 * the record as first stored; `done` resolves with the final one (`done` or
 * `failed`; it never rejects).
 * @throws KisekiError ERR_TENANT_NOT_FOUND for an unknown tenant, ERR_VALIDATION for rules that cannot be used.
 */
export async function startSigmaHunt(options: StartSigmaHuntOptions): Promise<{ job: SigmaHuntRecord; done: Promise<SigmaHuntRecord> }> {
  const { store, clock, supportId } = options;
  if (store.tenants.get(supportId) === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId });
  if (options.untilMs !== undefined && options.untilMs < options.sinceMs) throw new KisekiError('ERR_VALIDATION', { field: 'until', reason: 'until is before since' });
  const { rules, refused } = rulesOf(options.choice, options.ruleSource);
  const now = clock.now();
  const job: SigmaHuntRecord = {
    id: newHuntId(now),
    supportId,
    status: 'running',
    requestedBy: options.requestedBy,
    createdAt: now,
    sinceMs: options.sinceMs,
    ...(options.untilMs === undefined ? {} : { untilMs: options.untilMs }),
    ruleSet: { kind: options.choice.kind, ...(options.choice.kind === 'rule' ? { ruleId: options.choice.ruleId } : {}), rules: rules.length, refused: refused.map(refusedView) },
    progress: { done: 0, total: 0 },
    batches: 0,
    events: 0,
    hits: 0,
    truncated: false,
    byRule: {},
  };
  await store.sigmaHunts.put(job);
  return { job, done: run(options, { ...job }, rules) };
}

async function run(options: StartSigmaHuntOptions, job: SigmaHuntRecord, rules: readonly CompiledRule[]): Promise<SigmaHuntRecord> {
  const { store, clock } = options;
  const sliceMs = options.sliceMs ?? 20;
  const writeEvery = options.progressWriteIntervalMs ?? 1000;
  try {
    const hunter = createSigmaHunter({ supportId: job.supportId, sinceMs: job.sinceMs, ...(job.untilMs === undefined ? {} : { untilMs: job.untilMs }), rules });
    const it = tenantTrailBatches(store, options.dataDir, job.supportId, job.sinceMs);
    let pending: SigmaHuntHit[] = [];
    let stored = 0;
    let lastWrite = performance.now();
    const save = async (): Promise<void> => {
      await store.sigmaHunts.addHits(job.id, stored, pending);
      stored += pending.length;
      pending = [];
      job.batches = hunter.batches;
      job.events = hunter.events;
      await store.sigmaHunts.put(job);
      lastWrite = performance.now();
    };
    let sliceStart = performance.now();
    for (;;) {
      const step = it.next();
      if (step.done === true) {
        job.progress = { done: step.value.done, total: step.value.total };
        break;
      }
      job.progress = { done: step.value.progress.done, total: step.value.progress.total };
      if (step.value.batch !== undefined) {
        for (const h of hunter.batch(step.value.batch)) {
          job.hits++;
          job.byRule[h.ruleId] = (job.byRule[h.ruleId] ?? 0) + 1;
          if (stored + pending.length < MAX_HUNT_HITS) pending.push(h);
          else job.truncated = true;
        }
      }
      if (performance.now() - sliceStart >= sliceMs) {
        if (performance.now() - lastWrite >= writeEvery) await save();
        await tick();
        sliceStart = performance.now();
      }
    }
    job.status = 'done';
    job.finishedAt = clock.now();
    await save();
    return job;
  } catch (err) {
    job.status = 'failed';
    job.finishedAt = clock.now();
    job.error = err instanceof Error ? err.message : String(err);
    await store.sigmaHunts.put(job).catch(() => undefined);
    return job;
  }
}
