/**
 * Hunting history: Sigma rules run over a tenant's stored trails (cold
 * archives and the hot store, export/trail-reader.ts), like Chainsaw's or
 * Hayabusa's hunt over a fleet's history, so a new rule can be checked
 * against the last days at once. Each device's events are folded into a
 * process table of its own (device-state.ts) in the order read, so parent
 * and actor fields resolve as they do in the shards. Nothing is stored:
 * the hits are returned.
 */
import type { TrailEvent } from '../core/contracts.js';
import { readTenantTrails, type TrailBatch, type TrailProgress } from '../export/index.js';
import type { HotStore, SigmaHuntHit } from '../storage/index.js';
import { DEFAULT_DEVICE_LIMITS, DeviceState } from './device-state.js';
import { createSigmaMatcher, type CompiledRule, type ProcessFacts, type ProcessResolver } from './sigma/index.js';

/** One rule matching one stored event. */
export type HuntHit = SigmaHuntHit;

export interface HuntOptions {
  store: HotStore;
  dataDir: string;
  supportId: string;
  /** Batches received from this time (ms) on; events older than it are skipped too. */
  sinceMs: number;
  /** Events newer than this (ms) are skipped (default: none). */
  untilMs?: number;
  rules: readonly CompiledRule[];
  onProgress?: (p: TrailProgress) => void;
}

export interface HuntResult {
  supportId: string;
  sinceMs: number;
  rules: number;
  /** Batches read (a batch both archived and hot counts once). */
  batches: number;
  events: number;
  hits: HuntHit[];
  /** Hits counted per rule id. */
  byRule: Record<string, number>;
}

/** Matches batches one at a time, each device's events folded into a process table of its own. */
export interface SigmaHunter {
  /** The hits of one batch (in event order); counts it. */
  batch(batch: TrailBatch): HuntHit[];
  readonly batches: number;
  readonly events: number;
}

/** A hunter for the rules over one tenant's batches (shared by the CLI's hunt and the API's hunt jobs). */
export function createSigmaHunter(options: { supportId: string; sinceMs: number; untilMs?: number; rules: readonly CompiledRule[] }): SigmaHunter {
  const states = new Map<string, DeviceState>();
  let current: DeviceState | undefined;
  const resolver: ProcessResolver = { process: (pg) => current?.proc(pg) as ProcessFacts | undefined };
  const matcher = createSigmaMatcher(options.rules, { resolver });
  const until = options.untilMs ?? Number.POSITIVE_INFINITY;
  let events = 0;
  let batches = 0;
  return {
    get batches() {
      return batches;
    },
    get events() {
      return events;
    },
    batch(batch) {
      batches++;
      const hits: HuntHit[] = [];
      let state = states.get(batch.tmid);
      if (state === undefined) states.set(batch.tmid, (state = new DeviceState(DEFAULT_DEVICE_LIMITS)));
      current = state;
      for (const raw of batch.events) {
        if (typeof raw !== 'object' || raw === null) continue;
        const e = raw as TrailEvent;
        if (typeof e.k !== 'string') continue;
        state.apply(e, 0);
        if (typeof e.ts === 'number' && (e.ts < options.sinceMs || e.ts > until)) continue;
        events++;
        const matched = matcher.match(e, options.supportId);
        for (const rule of matched) {
          const pg = typeof e.pg === 'string' ? e.pg : '';
          const image = e.k === 'proc.start' && typeof e.image === 'string' ? e.image : (state.proc(pg === '' ? undefined : pg)?.image ?? '');
          hits.push({ ruleId: rule.id, title: rule.title, level: rule.level, severity: rule.severity, tags: rule.tags, tmid: batch.tmid, computer: batch.computer, seq: e.seq, ts: e.ts, k: e.k, pg, image, source: batch.source });
        }
      }
      current = undefined;
      return hits;
    },
  };
}

/** Runs `rules` over the tenant's stored trails since `sinceMs`. */
export function runSigmaHunt(options: HuntOptions): HuntResult {
  const hunter = createSigmaHunter(options);
  const hits: HuntHit[] = [];
  const byRule: Record<string, number> = {};
  readTenantTrails(
    options.store,
    options.dataDir,
    options.supportId,
    options.sinceMs,
    (batch) => {
      for (const h of hunter.batch(batch)) {
        hits.push(h);
        byRule[h.ruleId] = (byRule[h.ruleId] ?? 0) + 1;
      }
    },
    options.onProgress,
  );
  return { supportId: options.supportId, sinceMs: options.sinceMs, rules: options.rules.length, batches: hunter.batches, events: hunter.events, hits, byRule };
}
