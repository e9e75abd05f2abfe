/**
 * The Sigma matcher: compiled rules indexed by trail kind, with a literal
 * prefilter, so that an event touches only the rules that can match it.
 *
 * Per exact kind: the rules without a prefilter (evaluated on every event of
 * the kind) and, per field, one literal scanner over the literals of the
 * rules that prefilter on that field. An event reads each such field once,
 * scans it, and evaluates only the rules whose literals occurred: a rule
 * requires up to four clauses (compile.ts), a literal hit sets the bit of its
 * clause, and the rule is evaluated once all its bits are set. Data-map
 * kinds (`security.4688`) are looked up by prefix and cached per kind.
 *
 * `match(event)` returns a shared empty array when nothing matches and does
 * not allocate on that path: computed text fields (a registry event's
 * `TargetObject`, Sysmon's `Hashes`) are fed to their scanner part by part
 * instead of being built. Parent and actor fields come
 * from the {@link ProcessResolver} the shard supplies. What scanning a
 * value found is remembered per scanner and value (a computed field by its
 * first part), since trail values repeat: every event of a process repeats
 * its image and command line, and registry keys, host and file names recur.
 * Tenant exclusions (Sigma filters) are checked only after a rule matched.
 */
import { internString } from '../../core/intern.js';
import { MAX_CLAUSES, type CompiledFilter, type CompiledRule, type Program } from './compile.js';
import { nextSigmaEvent, partsOf, type FieldReader, type PartsReader } from './field-map.js';
import { createLiteralScanner, type LiteralScanner } from './literal-scanner.js';
import type { ProcessResolver, SigmaRuleInfo } from './types.js';

type Ev = Readonly<Record<string, unknown>>;

interface Slot {
  index: number;
  rule: CompiledRule;
  program: Program;
  guard: ((event: Ev) => boolean) | undefined;
}

interface KindIndex {
  always: Slot[];
  scanners: Scanner[];
}

interface Scanner {
  field: string;
  reader: FieldReader;
  scanner: LiteralScanner;
  parts: PartsReader | undefined;
  feed: (text: string) => void;
  /** Value (a computed field's first part) → what scanning it reported. */
  seen: Map<string, Scanned>;
  /** Look-ups and hits of `seen` in the current period (see {@link remember}). */
  lookups: number;
  found: number;
  /** False while the last period's hit rate was low: only one miss in SAMPLE_MISSES is remembered. */
  remembering: boolean;
  misses: number;
}

/** What scanning one value (or a computed value's first part) reported, and the automaton state it ended in. */
interface Scanned {
  outputs: Int32Array;
  state: number;
}

/**
 * Values remembered per scanner before its memo starts over (bounds its memory). Trail values
 * repeat: a process's image and command line on each of its events, registry keys, host and
 * file names; scanning a value once per distinct value is what keeps Sigma cheap in the shard.
 */
const MAX_SEEN_VALUES = 2048;
/** Look-ups per period over which a memo's hit rate is judged. */
const MEMO_PERIOD = 4096;
/** Below this hit rate (share of look-ups) a memo stops remembering most misses for the next period. */
const MEMO_MIN_HIT_RATE = 0.25;
/** While a memo is not remembering, one miss in this many still is (so a rate that improves is seen). */
const SAMPLE_MISSES = 16;
/** Longer values are scanned, not remembered (their copies would cost more memory than their scans cost time). */
const MAX_REMEMBERED_LENGTH = 512;
const NO_SLOTS = new Int32Array(0);

/** Counters of a matcher (monotonic). */
export interface SigmaMatcherStats {
  events: number;
  /** Rule evaluations (candidates after the prefilter). */
  evaluated: number;
  hits: number;
  /** Hits removed by a tenant's Sigma filter. */
  suppressed: number;
}

/** Options of {@link createSigmaMatcher}. */
export interface SigmaMatcherOptions {
  /** The process table, for actor and parent fields (ParentImage, …); without it only the event's own fields are read. */
  resolver?: ProcessResolver;
  /** Most data-map kinds (`security.<id>`) whose rule lists are cached (default 4,096). */
  maxCachedKinds?: number;
}

/** Compile once, then `match(event)` per trail event. */
export interface SigmaMatcher {
  /**
   * The rules that match `event`.
   * @param tenant the event's tenant (support ID), for its Sigma filters.
   * @returns a shared empty array when none matches (do not mutate it).
   */
  match(event: Ev, tenant?: string): readonly SigmaRuleInfo[];
  /** Replaces a tenant's exclusions: rule id → filters (from compileFilter). */
  setTenantFilters(tenant: string, filters: ReadonlyMap<string, readonly CompiledFilter[]>): void;
  readonly rules: readonly CompiledRule[];
  readonly stats: Readonly<SigmaMatcherStats>;
  /** Per kind: rules evaluated on every event, scanners and their literal count (for docs and benchmarks). */
  describe(): { kind: string; rules: number; always: number; scannedFields: number }[];
}

const EMPTY: readonly SigmaRuleInfo[] = Object.freeze([]);
/** `got` of a slot already evaluated for the current event (above every clause mask). */
const EVALUATED = 0xff;
const NO_EVENT: Ev = Object.freeze({});

/**
 * Builds the index of a rule set.
 * @param rules compiled rules (compileRule / loadSigmaRules).
 */
export function createSigmaMatcher(rules: readonly CompiledRule[], options: SigmaMatcherOptions = {}): SigmaMatcher {
  const resolver = options.resolver;
  const maxCached = options.maxCachedKinds ?? 4096;
  const exactSlots = new Map<string, Slot[]>();
  const prefixSlots = new Map<string, Slot[]>();
  let nSlots = 0;
  for (const rule of rules) {
    if (rule.exact !== undefined) {
      for (const k of rule.info.kinds) {
        const list = exactSlots.get(k) ?? [];
        list.push({ index: nSlots++, rule, program: rule.exact, guard: rule.guard });
        exactSlots.set(k, list);
      }
    }
    if (rule.data !== undefined) {
      for (const p of rule.info.prefixes) {
        const list = prefixSlots.get(p) ?? [];
        list.push({ index: nSlots++, rule, program: rule.data, guard: rule.guard });
        prefixSlots.set(p, list);
      }
    }
  }
  const slots: Slot[] = new Array<Slot>(nSlots);
  for (const list of [...exactSlots.values(), ...prefixSlots.values()]) for (const s of list) slots[s.index] = s;

  // Per slot: the clause bits that must all be set before it is evaluated, and those set for the current event.
  const need = new Uint8Array(nSlots);
  const got = new Uint8Array(nSlots);
  const byKind = new Map<string, KindIndex>();
  for (const [kind, list] of exactSlots) {
    const always: Slot[] = [];
    const perField = new Map<FieldReader, { field: string; reader: FieldReader; entries: { literal: string; output: number }[] }>();
    for (const slot of list) {
      const pre = slot.program.prefilter;
      if (pre === null) {
        always.push(slot);
        continue;
      }
      const clauses = slot.program.clauses.length > 0 ? slot.program.clauses : [pre];
      need[slot.index] = (1 << clauses.length) - 1;
      clauses.forEach((clause, ci) => {
        for (const p of clause) {
          // Keyed by reader, not name: one Sigma field may be read differently by two logsources on one kind
          // (TargetFilename of Sysmon 11 and 15), and one reader is shared by every rule that reads the same way.
          const key = p.reader;
          const f = perField.get(key) ?? { field: p.field, reader: p.reader, entries: [] };
          for (const literal of p.literals) f.entries.push({ literal, output: slot.index * MAX_CLAUSES + ci });
          perField.set(key, f);
        }
      });
    }
    byKind.set(kind, {
      always,
      scanners: [...perField.values()].map((f) => {
        const scanner = createLiteralScanner(f.entries);
        // Made once per scanner, so feeding parts allocates nothing per event.
        const sc: Scanner = {
          field: f.field,
          reader: f.reader,
          scanner,
          parts: partsOf(f.reader),
          feed: (text) => {
            // The first part (a registry key, a path) through the memo; the rest from the state it ended in.
            partState = partState < 0 ? scanRemembered(sc, text) : scanner.scanFrom(partState, text, hit);
          },
          seen: new Map(),
          lookups: 0,
          found: 0,
          remembering: true,
          misses: 0,
        };
        return sc;
      }),
    });
  }
  const prefixCache = new Map<string, Slot[]>();
  const prefixes = [...prefixSlots.keys()];
  const filters = new Map<string, Map<number, readonly CompiledFilter[]>>();
  const stats: SigmaMatcherStats = { events: 0, evaluated: 0, hits: 0, suppressed: 0 };

  // Per-event state, reused: the stamp marks slots already considered for the current event.
  const stamp = new Uint32Array(nSlots);
  let epoch = 0;
  let curEvent: Ev = NO_EVENT;
  let curTenantFilters: Map<number, readonly CompiledFilter[]> | undefined;
  let hits: SigmaRuleInfo[] | undefined;

  /** A scanner's output: a literal of clause `output % MAX_CLAUSES` of slot `output / MAX_CLAUSES` occurred. */
  function hit(output: number): void {
    const index = (output / MAX_CLAUSES) | 0;
    if (stamp[index] !== epoch) {
      stamp[index] = epoch;
      got[index] = 0;
    }
    const g = got[index]!;
    if (g === EVALUATED) return;
    const now = g | (1 << (output - index * MAX_CLAUSES));
    if (now !== need[index]) {
      got[index] = now;
      return;
    }
    got[index] = EVALUATED;
    evaluate(index);
  }

  /** A slot with no clause: evaluated once per event. */
  function consider(index: number): void {
    if (stamp[index] === epoch) return;
    stamp[index] = epoch;
    got[index] = EVALUATED;
    evaluate(index);
  }

  function evaluate(index: number): void {
    const slot = slots[index]!;
    if (slot.guard !== undefined && !slot.guard(curEvent)) return;
    stats.evaluated++;
    if (!slot.program.evaluate(curEvent, resolver)) return;
    const fs = curTenantFilters?.get(index);
    if (fs !== undefined) {
      for (const f of fs) {
        if (f.excludes(curEvent, resolver)) {
          stats.suppressed++;
          return;
        }
      }
    }
    stats.hits++;
    (hits ??= []).push(slot.rule.info);
  }

  // Slots one scan reported, while a process field's value is scanned for the memo.
  const collected: number[] = [];
  const collect = (index: number): void => {
    if (!collected.includes(index)) collected.push(index);
  };

  /** Automaton state while a computed field's parts are fed (-1: before the first part). */
  let partState = -1;

  /**
   * Scans a value once per distinct value (see MAX_SEEN_VALUES): what the
   * scan reported is remembered, and reported again when the value recurs.
   * A memo that rarely hits (hashes, random names) stops taking new values
   * for a period, so it costs neither copies nor garbage.
   * @returns the automaton state at the value's end (to continue with a computed field's next part).
   */
  function scanRemembered(sc: Scanner, v: string): number {
    if (v.length > MAX_REMEMBERED_LENGTH) return sc.scanner.scanFrom(0, v, hit);
    if (++sc.lookups >= MEMO_PERIOD) {
      sc.remembering = sc.found >= sc.lookups * MEMO_MIN_HIT_RATE;
      sc.lookups = 0;
      sc.found = 0;
    }
    const seen = sc.seen;
    let m = seen.get(v);
    if (m !== undefined) sc.found++;
    else {
      if (!sc.remembering && ++sc.misses % SAMPLE_MISSES !== 0) return sc.scanner.scanFrom(0, v, hit);
      collected.length = 0;
      const state = sc.scanner.scanFrom(0, v, collect);
      m = { outputs: collected.length === 0 ? NO_SLOTS : Int32Array.from(collected), state };
      if (seen.size >= MAX_SEEN_VALUES) seen.clear();
      // Interned, not only copied (a decoder's slice must not keep its batch alive): values the shard's process
      // table holds are the same interned strings, so their later look-ups compare pointers, not characters.
      seen.set(internString(v), m);
    }
    const outputs = m.outputs;
    for (let i = 0; i < outputs.length; i++) hit(outputs[i]!);
    return m.state;
  }

  function prefixSlotsOf(kind: string): Slot[] | undefined {
    let list = prefixCache.get(kind);
    if (list !== undefined) return list;
    list = [];
    for (const p of prefixes) if (kind.startsWith(p)) list.push(...prefixSlots.get(p)!);
    if (prefixCache.size >= maxCached) prefixCache.clear();
    prefixCache.set(kind, list);
    return list;
  }

  return {
    rules,
    stats,
    match(event, tenant) {
      stats.events++;
      const kind = event.k;
      if (typeof kind !== 'string') return EMPTY;
      nextSigmaEvent();
      epoch = epoch === 0xffffffff ? 1 : epoch + 1;
      if (epoch === 1) stamp.fill(0);
      curEvent = event;
      curTenantFilters = tenant === undefined ? undefined : filters.get(tenant);
      hits = undefined;
      const idx = byKind.get(kind);
      if (idx !== undefined) {
        for (let i = 0; i < idx.always.length; i++) consider(idx.always[i]!.index);
        for (let i = 0; i < idx.scanners.length; i++) {
          const sc = idx.scanners[i]!;
          if (sc.parts !== undefined) {
            // A computed text (registry TargetObject, Sysmon Hashes): scanned part by part, never built.
            partState = -1;
            sc.parts(event, sc.feed);
            continue;
          }
          const v = sc.reader(event, resolver);
          if (typeof v === 'string') scanRemembered(sc, v);
          // Ports, PIDs, event IDs: rules compare them as text (V8 caches the text of small numbers).
          else if (typeof v === 'number' || typeof v === 'boolean') sc.scanner.scan(String(v), hit);
          else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') sc.scanner.scan(x, hit);
        }
      }
      if (prefixes.length > 0 && kind.includes('.')) {
        const list = prefixSlotsOf(kind);
        if (list !== undefined) for (let i = 0; i < list.length; i++) consider(list[i]!.index);
      }
      const out = hits;
      hits = undefined;
      curEvent = NO_EVENT;
      return out ?? EMPTY;
    },
    setTenantFilters(tenant, byRuleId) {
      const m = new Map<number, readonly CompiledFilter[]>();
      for (const s of slots) {
        const f = byRuleId.get(s.rule.info.id);
        if (f !== undefined && f.length > 0) m.set(s.index, f);
      }
      if (m.size === 0) filters.delete(tenant);
      else filters.set(tenant, m);
    },
    describe() {
      return [...byKind].map(([kind, idx]) => ({ kind, rules: exactSlots.get(kind)!.length, always: idx.always.length, scannedFields: idx.scanners.length }));
    },
  };
}
