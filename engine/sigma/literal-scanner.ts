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
  // The root's transitions as a dense table: most characters of a value leave the root at once.
  const root = new Int32Array(65536);
  for (const [c, t] of next[0]!) root[c] = t;
  const out = outputs.map((o) => (o.length === 0 ? null : Int32Array.from(o)));

  return {
    states: n,
    scan(text, onMatch) {
      let s = 0;
      for (let i = 0; i < text.length; i++) {
        const c = FOLD[text.charCodeAt(i)]!;
        for (;;) {
          if (s === 0) {
            s = root[c]!;
            break;
          }
          const t = next[s]!.get(c);
          if (t !== undefined) {
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
    },
  };
}
