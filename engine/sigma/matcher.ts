/**
 * The Sigma matcher: compiled rules indexed by trail kind, with a literal
 * prefilter, so that an event touches only the rules that can match it.
 *
 * Per exact kind: the rules without a prefilter (evaluated on every event of
 * the kind) and, per field, one literal scanner over the literals of the
 * rules that prefilter on that field. An event reads each such field once,
 * scans it, and evaluates only the rules whose literal occurred. Data-map
 * kinds (`security.4688`) are looked up by prefix and cached per kind.
 *
 * `match(event)` returns a shared empty array when nothing matches and does
 * not allocate on that path: computed text fields (a registry event's
 * `TargetObject`, Sysmon's `Hashes`) are fed to their scanner part by part
 * instead of being built. Parent and actor fields come
 * from the {@link ProcessResolver} the shard supplies; what scanning a
 * process field's value (the actor's Image, CommandLine, the parent's…)
 * found is remembered per value, since every event of a process repeats it.
 * Tenant exclusions (Sigma filters) are checked only after a rule matched.
 */
import type { CompiledFilter, CompiledRule, Program } from './compile.js';
import { isProcessReader, nextSigmaEvent, partsOf, type FieldReader, type PartsReader } from './field-map.js';
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
  /** For process fields (Image, CommandLine, ParentImage…): value → the slots its scan reported. */
  seen: Map<string, Int32Array> | undefined;
}

/** Values remembered per process-field scanner before the memo starts over (bounds its memory). */
const MAX_SEEN_VALUES = 2048;
const NO_SLOTS = new Int32Array(0);

/**
 * An owned copy of a string: a decoder may hand out slices of one string per
 * batch, and a memo key must not keep a whole batch's text alive.
 */
function ownedCopy(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

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
      for (const p of pre) {
        // Keyed by reader, not name: one Sigma field may be read differently by two logsources on one kind
        // (TargetFilename of Sysmon 11 and 15), and one reader is shared by every rule that reads the same way.
        const key = p.reader;
        const f = perField.get(key) ?? { field: p.field, reader: p.reader, entries: [] };
        for (const literal of p.literals) f.entries.push({ literal, output: slot.index });
        perField.set(key, f);
      }
    }
    byKind.set(kind, {
      always,
      scanners: [...perField.values()].map((f) => {
        const scanner = createLiteralScanner(f.entries);
        // Made once per scanner, so feeding parts allocates nothing per event.
        const feed = (text: string): void => scanner.feed(text, consider);
        return { field: f.field, reader: f.reader, scanner, parts: partsOf(f.reader), feed, seen: isProcessReader(f.reader) ? new Map<string, Int32Array>() : undefined };
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

  function consider(index: number): void {
    if (stamp[index] === epoch) return;
    stamp[index] = epoch;
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

  /**
   * Scans a process field's value once per distinct value: the actor's image
   * or command line is read on every event of the process (half the scanned
   * text of a generated trail), and its literals do not change.
   */
  function scanRemembered(sc: Scanner, seen: Map<string, Int32Array>, v: string): void {
    let slots = seen.get(v);
    if (slots === undefined) {
      collected.length = 0;
      sc.scanner.scan(v, collect);
      slots = collected.length === 0 ? NO_SLOTS : Int32Array.from(collected);
      if (seen.size >= MAX_SEEN_VALUES) seen.clear();
      seen.set(ownedCopy(v), slots);
    }
    for (let i = 0; i < slots.length; i++) consider(slots[i]!);
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
            sc.scanner.reset();
            sc.parts(event, sc.feed);
            continue;
          }
          const v = sc.reader(event, resolver);
          if (typeof v === 'string') {
            if (sc.seen !== undefined) scanRemembered(sc, sc.seen, v);
            else sc.scanner.scan(v, consider);
          }
          // Ports, PIDs, event IDs: rules compare them as text (V8 caches the text of small numbers).
          else if (typeof v === 'number' || typeof v === 'boolean') sc.scanner.scan(String(v), consider);
          else if (Array.isArray(v)) for (const x of v) if (typeof x === 'string') sc.scanner.scan(x, consider);
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
