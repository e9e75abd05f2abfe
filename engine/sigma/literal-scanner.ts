/**
 * A case-insensitive multi-literal scanner (Aho–Corasick over UTF-16 code
 * units): given every prefilter literal of the rules that read one field of
 * one kind, one pass over the field's value reports the rules whose literal
 * occurs. It folds case through a table built once, so a scan allocates
 * nothing; the matcher's `--micro sigma` benchmark is what it is for.
 */

/** Lower-case fold of every UTF-16 code unit (identity where the lower case is not one unit). */
const FOLD = (() => {
  const t = new Uint16Array(65536);
  for (let c = 0; c < 65536; c++) {
    const l = String.fromCharCode(c).toLowerCase();
    t[c] = l.length === 1 ? l.charCodeAt(0) : c;
  }
  return t;
})();

/** Folds a string the way the scanner does. */
export function foldCase(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += String.fromCharCode(FOLD[s.charCodeAt(i)]!);
  return out;
}

/** A compiled scanner; outputs are small integers chosen by the caller (rule slots). */
export interface LiteralScanner {
  /**
   * Scans `text`; calls `onMatch(output)` for each output whose literal occurs
   * (an output may be reported more than once: the caller deduplicates).
   */
  scan(text: string, onMatch: (output: number) => void): void;
  /** Starts a value made of parts (see {@link LiteralScanner.feed}). */
  reset(): void;
  /** Scans the next part of a value, continuing from where the previous part ended. */
  feed(text: string, onMatch: (output: number) => void): void;
  /**
   * Scans `text` from automaton state `state` (0: a value's start) and returns the state it ends
   * in: a caller that remembers the state after a value's first part can scan only the rest.
   */
  scanFrom(state: number, text: string, onMatch: (output: number) => void): number;
  readonly states: number;
}

/**
 * Builds a scanner.
 * @param entries literal → output pairs; literals are folded here.
 */
export function createLiteralScanner(entries: readonly { literal: string; output: number }[]): LiteralScanner {
  const next: Map<number, number>[] = [new Map()];
  const outputs: number[][] = [[]];
  for (const { literal, output } of entries) {
    const lit = foldCase(literal);
    if (lit === '') continue;
    let s = 0;
    for (let i = 0; i < lit.length; i++) {
      const c = lit.charCodeAt(i);
      let t = next[s]!.get(c);
      if (t === undefined) {
        t = next.length;
        next.push(new Map());
        outputs.push([]);
        next[s]!.set(c, t);
      }
      s = t;
    }
    if (!outputs[s]!.includes(output)) outputs[s]!.push(output);
  }
  const n = next.length;
  const fail = new Int32Array(n);
  // Nearest state on the fail chain that has outputs (-1: none), so a scan visits only states that report.
  const outLink = new Int32Array(n).fill(-1);
  const queue: number[] = [];
  for (const t of next[0]!.values()) queue.push(t);
  for (let qi = 0; qi < queue.length; qi++) {
    const s = queue[qi]!;
    for (const [c, t] of next[s]!) {
      let f = fail[s]!;
      while (f !== 0 && !next[f]!.has(c)) f = fail[f]!;
      const ft = next[f]!.get(c);
      fail[t] = ft !== undefined && ft !== t ? ft : 0;
      outLink[t] = outputs[fail[t]!]!.length > 0 ? fail[t]! : outLink[fail[t]!]!;
      queue.push(t);
    }
  }
  // Tables sized for the shard's cache, not for the alphabet: in the shard the scanners share the caches
  // with decoding, LMDB and the correlator, and 64 Ki-entry tables per scanner (a quarter of a megabyte
  // each, ~150 scanners) missed on most characters. ASCII, nearly every character of a trail value,
  // goes through 128-entry tables; other characters through a Map.
  const rootAscii = new Int32Array(128);
  const rootOther = new Map<number, number>();
  // Characters of no literal send every state back to the root: one look-up instead of a fail walk.
  const inAscii = new Uint8Array(128);
  for (const [c, t] of next[0]!) {
    if (c < 128) rootAscii[c] = t;
    else rootOther.set(c, t);
  }
  // Every other edge, per state, in one contiguous run (compressed sparse rows): a trie state of a long
  // literal has one edge, and a literal's states are numbered in order, so a walk reads adjacent memory.
  const edgeStart = new Int32Array(n + 1);
  let edges = 0;
  for (let st = 0; st < n; st++) {
    edgeStart[st] = edges;
    if (st !== 0) edges += next[st]!.size;
  }
  edgeStart[n] = edges;
  const edgeChar = new Uint16Array(edges);
  const edgeTarget = new Int32Array(edges);
  const otherChars = new Set<number>();
  for (let st = 0; st < n; st++) {
    for (const c of next[st]!.keys()) {
      if (c < 128) inAscii[c] = 1;
      else otherChars.add(c);
    }
    if (st === 0) continue;
    let e = edgeStart[st]!;
    for (const [c, t] of [...next[st]!].sort((a, b) => a[0] - b[0])) {
      edgeChar[e] = c;
      edgeTarget[e] = t;
      e++;
    }
  }
  const step = (st: number, c: number): number => {
    const end = edgeStart[st + 1]!;
    for (let e = edgeStart[st]!; e < end; e++) {
      const x = edgeChar[e]!;
      if (x === c) return edgeTarget[e]!;
      if (x > c) return -1;
    }
    return -1;
  };
  const out = outputs.map((o) => (o.length === 0 ? null : Int32Array.from(o)));

  let carried = 0;
  const run = (start: number, text: string, onMatch: (output: number) => void): number => {
    let s = start;
    for (let i = 0; i < text.length; i++) {
      let c = text.charCodeAt(i);
      // Folded by arithmetic for ASCII; a few other characters fold into ASCII (the Kelvin sign into `k`).
      if (c >= 128) c = FOLD[c]!;
      if (c < 128) {
        if (c >= 65 && c <= 90) c += 32;
        if (inAscii[c] === 0) {
          s = 0;
          continue;
        }
      } else if (!otherChars.has(c)) {
        s = 0;
        continue;
      }
      for (;;) {
        if (s === 0) {
          s = c < 128 ? rootAscii[c]! : (rootOther.get(c) ?? 0);
          break;
        }
        const t = step(s, c);
        if (t >= 0) {
          s = t;
          break;
        }
        s = fail[s]!;
      }
      if (s === 0) continue;
      let o = out[s] !== null ? s : outLink[s]!;
      while (o > 0) {
        const list = out[o]!;
        for (let j = 0; j < list.length; j++) onMatch(list[j]!);
        o = outLink[o]!;
      }
    }
    return s;
  };
  return {
    states: n,
    scan(text, onMatch) {
      run(0, text, onMatch);
    },
    reset() {
      carried = 0;
    },
    feed(text, onMatch) {
      carried = run(carried, text, onMatch);
    },
    scanFrom(state, text, onMatch) {
      return run(state, text, onMatch);
    },
  };
}
