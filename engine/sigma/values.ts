/**
 * Sigma values and value modifiers (spec: rules specification "String
 * Wildcard", "Escape Character", "Special Field Values" and the modifiers
 * appendix): a field's values, after its modifiers, become one test on the
 * field's value plus the literals the prefilter may index.
 *
 * Strings follow pySigma's reading: `*` and `?` are wildcards, `\` escapes
 * `*`, `?` and `\`, and a `\` before anything else is a plain backslash.
 * Matching is case-insensitive unless `cased`; `re` is case-sensitive unless
 * `re|i`. String patterns compile to one anchored RegExp per field (values
 * OR-ed into one alternation), so a test never allocates.
 */
import { isKisekiError, KisekiError } from '../../core/errors.js';
import type { FieldReader } from './field-map.js';
import type { ProcessResolver } from './types.js';

/** A test of one field of one event. */
export type ValueTest = (value: unknown, event: Readonly<Record<string, unknown>>, resolver: ProcessResolver | undefined) => boolean;

/** Outcome of compiling one `field|mods: values` entry. */
export type CompiledValues =
  | {
      ok: true;
      test: ValueTest;
      /** Lower-case literals of which at least one occurs in the field whenever the test passes; null when none can be named. */
      literals: string[] | null;
      /** Fields read by `fieldref`. */
      refs: string[];
    }
  | { ok: false; reason: 'unsupported_modifier' | 'invalid_modifier_use' | 'invalid_regex' | 'unknown_placeholder' | 'invalid_value'; detail: string };

/** Options of value compilation. */
export interface ValueOptions {
  /** Values of `expand` placeholders (`%Administrators%` → ['admin*', …]), without the percent signs. */
  placeholders?: Readonly<Record<string, readonly string[]>>;
  /** Reader of another field, for `fieldref`. */
  readerFor?: (field: string) => FieldReader | undefined;
  /** Every string pattern as a RegExp, no literal fast path (tests compare the two). */
  regexOnly?: boolean;
}

type Tok = { t: 'lit'; s: string } | { t: 'star' } | { t: 'one' } | { t: 'cls'; chars: string };

type Val =
  | { t: 'str'; toks: Tok[]; raw?: string }
  | { t: 'bytes'; b: Buffer }
  | { t: 'num'; n: number }
  | { t: 'null' }
  | { t: 're'; src: string; flags: string }
  | { t: 'cidr'; src: string }
  | { t: 'ref'; field: string }
  | { t: 'exists'; b: boolean };

const WINDASH = '-/\u2013\u2014\u2015';
const KNOWN = new Set([
  'contains',
  'startswith',
  'endswith',
  'all',
  'windash',
  're',
  'i',
  'm',
  's',
  'base64',
  'base64offset',
  'utf16le',
  'utf16be',
  'utf16',
  'wide',
  'cidr',
  'exists',
  'fieldref',
  'lt',
  'lte',
  'gt',
  'gte',
  'cased',
  'expand',
  'neq',
]);

type ValueRefusal = Extract<CompiledValues, { ok: false }>['reason'];

/** A value the matcher cannot serve; caught in {@link compileValues} and returned as a refusal. */
function refuse(reason: ValueRefusal, detail: string): KisekiError {
  return new KisekiError('ERR_SIGMA_REFUSED', { reason, detail });
}

/** Parses a Sigma string into literal runs and wildcards (escapes resolved). */
export function parseSigmaString(s: string): Tok[] {
  const out: Tok[] = [];
  let lit = '';
  const flush = () => {
    if (lit !== '') out.push({ t: 'lit', s: lit });
    lit = '';
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      const n = s[i + 1];
      if (n === '*' || n === '?' || n === '\\') {
        lit += n;
        i++;
      } else lit += '\\';
    } else if (c === '*') {
      flush();
      out.push({ t: 'star' });
    } else if (c === '?') {
      flush();
      out.push({ t: 'one' });
    } else lit += c;
  }
  flush();
  return out;
}

function plain(toks: Tok[]): string | undefined {
  let s = '';
  for (const t of toks) {
    if (t.t !== 'lit') return undefined;
    s += t.s;
  }
  return s;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function classOf(chars: string): string {
  return `[${chars.replace(/[-\\\]^]/g, '\\$&')}]`;
}

/** Regex source of a token list, anchored where the pattern has no leading / trailing `*`. */
function tokSource(toks: Tok[]): string {
  let start = 0;
  let end = toks.length;
  while (start < end && toks[start]!.t === 'star') start++;
  while (end > start && toks[end - 1]!.t === 'star') end--;
  let src = start === 0 ? '^' : '';
  for (let i = start; i < end; i++) {
    const t = toks[i]!;
    src += t.t === 'lit' ? escapeRe(t.s) : t.t === 'star' ? '[\\s\\S]*' : t.t === 'one' ? '[\\s\\S]' : classOf(t.chars);
  }
  if (end === toks.length) src += '$';
  return src;
}

/** The longest literal run of a token list, lower-case; null when it has none. */
function longestLiteral(toks: Tok[]): string | null {
  let best = '';
  for (const t of toks) if (t.t === 'lit' && t.s.length > best.length) best = t.s;
  return best === '' ? null : best.toLowerCase();
}

/** True when `|` separates alternatives of the whole expression (not inside a group or a class). */
function hasTopLevelAlternation(src: string): boolean {
  let depth = 0;
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') i++;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) return true;
  }
  return false;
}

/** Single characters worth a prefilter literal (see regexLiteral). */
const RARE_CHARACTERS = ['`', '^'];

/**
 * A literal every match of the regular expression must contain, or null.
 * Conservative: gives up on alternation of the whole expression and takes
 * only characters that are neither optional nor inside a group or class.
 */
export function regexLiteral(src: string): string | null {
  if (hasTopLevelAlternation(src)) return null;
  let best = '';
  let run = '';
  const end = () => {
    if (run.length > best.length) best = run;
    run = '';
  };
  let depth = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    let lit: string | undefined;
    let next = i + 1;
    if (c === '\\') {
      const n = src[i + 1];
      if (n === undefined) return null;
      next = i + 2;
      if (/[.\\/$^*+?()[\]{}|\-\s"'`:;,<>=!@#%&~]/.test(n)) lit = n;
    } else if (c === '(') {
      depth++;
      end();
      continue;
    } else if (c === ')') {
      depth--;
      end();
      continue;
    } else if (c === '[') {
      end();
      const close = src.indexOf(']', i + 2);
      if (close < 0) return null;
      i = close;
      continue;
    } else if (!'.^$*+?{}'.includes(c)) lit = c;
    const q = src[next];
    const optional = q === '?' || q === '*' || (q === '{' && /^\{0/.test(src.slice(next)));
    if (lit === undefined || depth > 0 || optional) {
      end();
      i = next - 1;
      continue;
    }
    run += lit;
    if (q === '+' || q === '{') end();
    i = next - 1;
  }
  end();
  // One character selects nothing, except the escape characters of obfuscated command lines
  // (PowerShell's backtick, cmd's caret), which plain text almost never holds.
  return best.length >= 2 || RARE_CHARACTERS.includes(best) ? best.toLowerCase() : null;
}

function toStr(v: unknown): Val {
  if (v === null || v === undefined) return { t: 'null' };
  if (typeof v === 'number') return Number.isFinite(v) ? { t: 'num', n: v } : ({ t: 'str', toks: [{ t: 'lit', s: String(v) }] } as Val);
  if (typeof v === 'boolean') return { t: 'str', toks: [{ t: 'lit', s: String(v) }] };
  if (typeof v === 'string') return { t: 'str', toks: parseSigmaString(v), raw: v };
  throw refuse('invalid_value', `value of type ${Array.isArray(v) ? 'list inside a list' : typeof v}`);
}

function asString(v: Val): Tok[] {
  if (v.t === 'str') return v.toks;
  if (v.t === 'num') return [{ t: 'lit', s: String(v.n) }];
  if (v.t === 'bytes') return [{ t: 'lit', s: v.b.toString('latin1') }];
  throw refuse('invalid_modifier_use', `a string modifier on a ${v.t} value`);
}

function rawText(v: Val, mod: string): string {
  const p = plain(asString(v));
  if (p === undefined) throw refuse('invalid_modifier_use', `${mod} on a value with wildcards`);
  return p;
}

function bytesOf(v: Val, mod: string): Buffer {
  return v.t === 'bytes' ? v.b : Buffer.from(rawText(v, mod), 'utf8');
}

function utf16(s: string, be: boolean): Buffer {
  const le = Buffer.from(s, 'utf16le');
  if (be) le.swap16();
  return le;
}

function windash(toks: Tok[]): Tok[] {
  const out: Tok[] = [];
  for (const t of toks) {
    if (t.t !== 'lit') {
      out.push(t);
      continue;
    }
    let last = 0;
    for (const m of t.s.matchAll(/\B[-/]\b/g)) {
      if (m.index > last) out.push({ t: 'lit', s: t.s.slice(last, m.index) });
      out.push({ t: 'cls', chars: WINDASH });
      last = m.index + 1;
    }
    if (last < t.s.length) out.push({ t: 'lit', s: t.s.slice(last) });
  }
  return out;
}

/**
 * `expand`: each `%name%` becomes each of its configured values (an OR);
 * `\%` is a plain percent sign (rules specification, Placeholders).
 */
function expand(toks: Tok[], placeholders: Readonly<Record<string, readonly string[]>>): Tok[][] {
  let variants: Tok[][] = [[]];
  const pushLit = (s: string) => {
    if (s !== '') for (const v of variants) v.push({ t: 'lit', s });
  };
  for (const t of toks) {
    if (t.t !== 'lit' || !t.s.includes('%')) {
      for (const v of variants) v.push(t);
      continue;
    }
    let plainText = '';
    for (let i = 0; i < t.s.length; i++) {
      const c = t.s[i]!;
      if (c === '\\' && t.s[i + 1] === '%') {
        plainText += '%';
        i++;
        continue;
      }
      const m = c === '%' ? /^%([^%\s\\]+)%/.exec(t.s.slice(i)) : null;
      if (m === null) {
        plainText += c;
        continue;
      }
      pushLit(plainText);
      plainText = '';
      const values = placeholders[m[1]!];
      if (values === undefined || values.length === 0) throw refuse('unknown_placeholder', `%${m[1]}%`);
      const next: Tok[][] = [];
      for (const v of variants) for (const x of values) next.push([...v, ...parseSigmaString(x)]);
      variants = next;
      i += m[0].length - 1;
    }
    pushLit(plainText);
  }
  return variants;
}

// ---------------------------------------------------------------------------
// CIDR

function ipv4(s: string): number | undefined {
  let n = 0;
  let parts = 0;
  let cur = -1;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (cur < 0 || cur > 255) return undefined;
      n = n * 256 + cur;
      parts++;
      cur = -1;
    } else if (c >= 48 && c <= 57) cur = (cur < 0 ? 0 : cur * 10) + (c - 48);
    else return undefined;
  }
  return parts === 4 ? n : undefined;
}

function ipv6(s: string): bigint | undefined {
  const z = s.indexOf('%');
  if (z >= 0) s = s.slice(0, z);
  // An IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4 !== null) {
    const n = ipv4(v4[1]!);
    if (n === undefined) return undefined;
    s = `${s.slice(0, v4.index)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string) => (h === '' ? [] : h.split(':').map((x) => (/^[0-9a-f]{1,4}$/i.test(x) ? parseInt(x, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  const groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  let out = 0n;
  for (const g of groups) {
    if (!Number.isInteger(g)) return undefined;
    out = (out << 16n) | BigInt(g);
  }
  return out;
}

function cidrTest(specs: string[]): (v: unknown) => boolean {
  const v4: [number, number][] = [];
  const v6: [bigint, bigint][] = [];
  for (const spec of specs) {
    const [addr, bitsText] = spec.split('/');
    const a4 = ipv4(addr ?? '');
    if (a4 !== undefined) {
      const bits = bitsText === undefined ? 32 : Number(bitsText);
      if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw refuse('invalid_value', `cidr ${spec}`);
      const size = 2 ** (32 - bits);
      const lo = Math.floor(a4 / size) * size;
      v4.push([lo, lo + size - 1]);
      continue;
    }
    const a6 = ipv6(addr ?? '');
    const bits = bitsText === undefined ? 128 : Number(bitsText);
    if (a6 === undefined || !Number.isInteger(bits) || bits < 0 || bits > 128) throw refuse('invalid_value', `cidr ${spec}`);
    const hostBits = BigInt(128 - bits);
    const lo = (a6 >> hostBits) << hostBits;
    v6.push([lo, lo + (1n << hostBits) - 1n]);
  }
  return (v) => {
    if (typeof v !== 'string') return false;
    if (v.includes(':')) {
      if (v6.length === 0) return false;
      const n = ipv6(v);
      if (n === undefined) return false;
      for (const [lo, hi] of v6) if (n >= lo && n <= hi) return true;
      return false;
    }
    const n = ipv4(v);
    if (n === undefined) return false;
    for (const [lo, hi] of v4) if (n >= lo && n <= hi) return true;
    return false;
  };
}

// ---------------------------------------------------------------------------

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') {
    const s = v.trim();
    const n = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s, 16) : Number(s);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** The string form of an event value for string patterns (numbers and booleans as text). */
function textOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function regexTest(re: RegExp): (v: unknown) => boolean {
  return (v) => {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const s = textOf(v[i]);
        if (s !== undefined && re.test(s)) return true;
      }
      return false;
    }
    const s = textOf(v);
    return s !== undefined && re.test(s);
  };
}

/**
 * Lower case of an event value for the literal fast path, remembered for the
 * last few values: one event's field is read by several candidate rules, and
 * the actor's image by every event of the process, so each is folded once.
 * `===` on strings compares contents, so a stale entry can never answer wrong.
 */
const LOWER_KEYS: (string | undefined)[] = new Array<string | undefined>(8).fill(undefined);
const LOWER_VALUES: string[] = new Array<string>(8).fill('');
let lowerNext = 0;

function lowerOf(s: string): string {
  for (let i = 0; i < 8; i++) if (LOWER_KEYS[i] === s) return LOWER_VALUES[i]!;
  const l = s.toLowerCase();
  LOWER_KEYS[lowerNext] = s;
  LOWER_VALUES[lowerNext] = l;
  lowerNext = (lowerNext + 1) & 7;
  return l;
}

/** Printable ASCII only: its lower case is one unit per unit, as the RegExp `i` flag folds it. */
function isAsciiText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** A pattern that is one literal with at most a leading and a trailing `*`: tested with string methods, not a RegExp. */
interface LiteralPattern {
  kind: 'eq' | 'start' | 'end' | 'in';
  text: string;
}

/** The literal form of a pattern, or undefined when it needs a RegExp (inner wildcards, classes, non-ASCII). */
function literalPattern(toks: Tok[], cased: boolean): LiteralPattern | undefined {
  const lead = toks[0]?.t === 'star';
  const trail = toks.length > 1 && toks[toks.length - 1]!.t === 'star';
  const inner = toks.slice(lead ? 1 : 0, trail ? -1 : undefined);
  if (inner.length !== 1 || inner[0]!.t !== 'lit') return undefined;
  const text = inner[0]!.s;
  if (text === '' || !isAsciiText(text)) return undefined;
  return { kind: lead ? (trail ? 'in' : 'end') : trail ? 'start' : 'eq', text: cased ? text : text.toLowerCase() };
}

/**
 * The OR of literal patterns as string comparisons on the value (lower-cased
 * once unless `cased`): a RegExp alternation of fifty `endswith` paths tries
 * every alternative at every position, these try each once. A value whose
 * lower case changes its length (a few non-ASCII letters) is left to the
 * RegExp, so both paths agree on every value.
 */
function literalTest(patterns: readonly LiteralPattern[], cased: boolean, fallback: RegExp): (v: unknown) => boolean {
  const eq = new Set<string>();
  const start: string[] = [];
  const end: string[] = [];
  const within: string[] = [];
  for (const p of patterns) {
    if (p.kind === 'eq') eq.add(p.text);
    else (p.kind === 'start' ? start : p.kind === 'end' ? end : within).push(p.text);
  }
  const one = (s: string): boolean => {
    const l = cased ? s : lowerOf(s);
    if (l.length !== s.length) return fallback.test(s);
    if (eq.size > 0 && eq.has(l)) return true;
    for (let i = 0; i < end.length; i++) if (l.endsWith(end[i]!)) return true;
    for (let i = 0; i < start.length; i++) if (l.startsWith(start[i]!)) return true;
    for (let i = 0; i < within.length; i++) if (l.includes(within[i]!)) return true;
    return false;
  };
  return (v) => {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const s = textOf(v[i]);
        if (s !== undefined && one(s)) return true;
      }
      return false;
    }
    const s = textOf(v);
    return s !== undefined && one(s);
  };
}

function makeRegex(src: string, flags: string, what: string): RegExp {
  try {
    return new RegExp(src, flags);
  } catch (err) {
    throw refuse('invalid_regex', `${what}: ${(err as Error).message}`);
  }
}

/**
 * Compiles the values of one detection entry (`field|mods: value | [values]`).
 * @param modifiers the modifiers after the field name, in order.
 * @param raw the YAML value: a scalar or a list of scalars.
 */
export function compileValues(modifiers: readonly string[], raw: unknown, options: ValueOptions = {}): CompiledValues {
  try {
    return compileOrThrow(modifiers, raw, options);
  } catch (err) {
    if (isKisekiError(err, 'ERR_SIGMA_REFUSED')) return { ok: false, reason: err.details?.reason as ValueRefusal, detail: String(err.details?.detail) };
    throw err;
  }
}

function compileOrThrow(modifiers: readonly string[], raw: unknown, options: ValueOptions): CompiledValues {
  for (const m of modifiers) if (!KNOWN.has(m)) throw refuse('unsupported_modifier', m);
  const list = Array.isArray(raw) ? raw : [raw];
  if (list.length === 0) throw refuse('invalid_value', 'empty value list');
  let vals: Val[] = list.map(toStr);
  let all = false;
  let cased = false;
  let neq = false;
  let reFlags: string | undefined;
  let numeric: 'lt' | 'lte' | 'gt' | 'gte' | undefined;

  for (const m of modifiers) {
    switch (m) {
      case 'all':
        all = true;
        break;
      case 'cased':
        cased = true;
        break;
      case 'neq':
        neq = true;
        break;
      case 'contains':
      case 'startswith':
      case 'endswith':
        vals = vals.map((v) => {
          const toks = asString(v);
          const head: Tok[] = m !== 'startswith' && toks[0]?.t !== 'star' ? [{ t: 'star' }] : [];
          const tail: Tok[] = m !== 'endswith' && toks[toks.length - 1]?.t !== 'star' ? [{ t: 'star' }] : [];
          return { t: 'str', toks: [...head, ...toks, ...tail] };
        });
        break;
      case 'windash':
        vals = vals.map((v) => ({ t: 'str', toks: windash(asString(v)) }));
        break;
      case 'expand':
        vals = vals.flatMap((v) => (v.t === 'str' ? expand(v.toks, options.placeholders ?? {}).map((toks): Val => ({ t: 'str', toks })) : [v]));
        break;
      case 'utf16le':
      case 'wide':
        vals = vals.map((v) => ({ t: 'bytes', b: utf16(rawText(v, m), false) }));
        break;
      case 'utf16be':
        vals = vals.map((v) => ({ t: 'bytes', b: utf16(rawText(v, m), true) }));
        break;
      case 'utf16':
        vals = vals.map((v) => ({ t: 'bytes', b: Buffer.concat([Buffer.from([0xff, 0xfe]), utf16(rawText(v, m), false)]) }));
        break;
      case 'base64':
        vals = vals.map((v) => ({ t: 'str', toks: [{ t: 'lit', s: bytesOf(v, m).toString('base64') }] }));
        break;
      case 'base64offset':
        vals = vals.flatMap((v) => {
          const b = bytesOf(v, m);
          const starts = [0, 2, 3];
          const ends = [0, -3, -2];
          const out: Val[] = [];
          for (let i = 0; i < 3; i++) {
            const enc = Buffer.concat([Buffer.alloc(i, 0x20), b]).toString('base64');
            const end = ends[(b.length + i) % 3]!;
            out.push({ t: 'str', toks: [{ t: 'lit', s: enc.slice(starts[i], end === 0 ? undefined : end) }] });
          }
          return out;
        });
        break;
      case 're':
        reFlags = '';
        vals = vals.map((v) => {
          // The regex is the value as written: wildcards and escapes are regex syntax here.
          if (v.t !== 'str' || v.raw === undefined) throw refuse('invalid_modifier_use', 're on a transformed or non-string value');
          return { t: 're', src: v.raw, flags: '' };
        });
        break;
      case 'i':
      case 'm':
      case 's':
        if (reFlags === undefined) throw refuse('invalid_modifier_use', `${m} without re`);
        reFlags += m;
        break;
      case 'cidr':
        vals = vals.map((v) => ({ t: 'cidr', src: rawText(v, m) }));
        break;
      case 'exists':
        if (vals.length !== 1 || list[0] === null || typeof list[0] !== 'boolean') throw refuse('invalid_modifier_use', 'exists needs true or false');
        vals = [{ t: 'exists', b: list[0] }];
        break;
      case 'fieldref':
        vals = vals.map((v) => ({ t: 'ref', field: rawText(v, m) }));
        break;
      case 'lt':
      case 'lte':
      case 'gt':
      case 'gte':
        numeric = m;
        for (const v of vals) if (v.t !== 'num') throw refuse('invalid_modifier_use', `${m} on a non-number`);
        break;
    }
  }

  const refs: string[] = [];
  const tests: ((v: unknown, e: Readonly<Record<string, unknown>>, r: ProcessResolver | undefined) => boolean)[] = [];
  const literals: (string | null)[] = [];

  if (vals[0]?.t === 'exists') {
    const want = (vals[0] as { b: boolean }).b;
    return { ok: true, test: (v) => (v !== undefined) === want, literals: null, refs };
  }
  if (numeric !== undefined) {
    const ns = vals.map((v) => (v as { n: number }).n);
    const cmp = numeric;
    for (const n of ns) {
      tests.push((v) => {
        const x = toNumber(v);
        if (x === undefined) return false;
        return cmp === 'lt' ? x < n : cmp === 'lte' ? x <= n : cmp === 'gt' ? x > n : x >= n;
      });
      literals.push(null);
    }
  } else {
    const strSources: string[] = [];
    // Literal forms of strSources, while every one has one (undefined after the first that needs a RegExp).
    let strLiterals: LiteralPattern[] | undefined = [];
    const cidrs: string[] = [];
    for (const v of vals) {
      switch (v.t) {
        case 'null':
          tests.push((x) => x === undefined || x === null);
          literals.push(null);
          break;
        case 'num':
        case 'str':
        case 'bytes': {
          const toks = asString(v);
          if (all) {
            tests.push(regexTest(makeRegex(tokSource(toks), cased ? '' : 'i', 'pattern')));
          } else {
            strSources.push(tokSource(toks));
            const lit: LiteralPattern | undefined = strLiterals === undefined || options.regexOnly === true ? undefined : literalPattern(toks, cased);
            strLiterals = lit === undefined ? undefined : [...(strLiterals ?? []), lit];
          }
          literals.push(longestLiteral(toks));
          break;
        }
        case 're': {
          let src = v.src;
          let flags = reFlags ?? '';
          // PCRE's leading inline flags, which JavaScript lacks.
          const inline = /^\(\?([ims]+)\)/.exec(src);
          if (inline !== null) {
            src = src.slice(inline[0].length);
            flags += inline[1];
          }
          if (/\(\?[imsx-]+[:)]/.test(src)) throw refuse('invalid_regex', 'inline flags inside the expression');
          const re = makeRegex(src, [...new Set(flags)].join(''), 're');
          tests.push(regexTest(re));
          literals.push(regexLiteral(src));
          break;
        }
        case 'cidr':
          cidrs.push(v.src);
          literals.push(null);
          break;
        case 'ref': {
          const reader = options.readerFor?.(v.field);
          if (reader === undefined) throw refuse('invalid_value', `fieldref to unmapped field ${v.field}`);
          refs.push(v.field);
          tests.push((x, e, r) => {
            const other = reader(e, r);
            const a = textOf(x);
            const b = textOf(other);
            if (a === undefined || b === undefined) return false;
            return cased ? a === b : a.length === b.length && a.toLowerCase() === b.toLowerCase();
          });
          literals.push(null);
          break;
        }
        default:
          throw refuse('invalid_value', `unexpected ${v.t}`);
      }
    }
    if (strSources.length > 0) {
      const re = makeRegex(strSources.length === 1 ? strSources[0]! : strSources.map((s) => `(?:${s})`).join('|'), cased ? '' : 'i', 'pattern');
      tests.push(strLiterals !== undefined && strLiterals.length === strSources.length ? literalTest(strLiterals, cased, re) : regexTest(re));
    }
    if (cidrs.length > 0) tests.push(cidrTest(cidrs));
  }

  let test: ValueTest;
  if (tests.length === 1) test = tests[0]!;
  // Loops, not every / some with an arrow: no closure per call.
  else if (all)
    test = (v, e, r) => {
      for (let i = 0; i < tests.length; i++) if (!tests[i]!(v, e, r)) return false;
      return true;
    };
  else
    test = (v, e, r) => {
      for (let i = 0; i < tests.length; i++) if (tests[i]!(v, e, r)) return true;
      return false;
    };
  if (neq) {
    const inner = test;
    test = (v, e, r) => !inner(v, e, r);
  }

  let lits: string[] | null;
  if (neq) lits = null;
  else if (all) {
    const known = literals.filter((l): l is string => l !== null).sort((a, b) => b.length - a.length);
    lits = known.length > 0 ? [known[0]!] : null;
  } else lits = literals.some((l) => l === null) ? null : [...new Set(literals as string[])];
  return { ok: true, test, literals: lits, refs };
}
