/**
 * The one command-line flag parser. Every command (bin/kiseki.ts, export,
 * import, detect, bench) declares its flags as a typed table and gets typed
 * values back, so `--flag value`, `--flag=value`, booleans, repeated values,
 * numbers and the wording of mistakes are the same everywhere. A mistake is a
 * KisekiError ERR_USAGE whose `details.reason` names the flag, which the
 * commands print with their usage text and exit code 64.
 */
import { KisekiError } from './errors.js';

/** One flag: its value type, whether it may repeat (values collect in order), a one-letter alias. */
export interface FlagSpec {
  type: 'string' | 'number' | 'boolean';
  multiple?: boolean;
  short?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

type ScalarOf<S extends FlagSpec> = S['type'] extends 'boolean' ? boolean : S['type'] extends 'number' ? number : string;
type ValueOf<S extends FlagSpec> = S['multiple'] extends true ? ScalarOf<S>[] : ScalarOf<S>;

/** Parsed values: a flag that was not given is absent (undefined). */
export type FlagValues<S extends FlagSpecs> = { -readonly [K in keyof S]?: ValueOf<S[K]> };

export interface ParsedFlags<S extends FlagSpecs> {
  values: FlagValues<S>;
  /** Arguments that are not flags, in order (only when `positionals` is allowed). */
  positionals: string[];
}

/** `--data DIR` and `--help`/`-h`, which every command accepts. */
export const COMMON_FLAGS = {
  data: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies FlagSpecs;

/** The usage error for a command-line mistake; `reason` is printed as it is. */
export function usageError(reason: string, details: Record<string, unknown> = {}): KisekiError {
  return new KisekiError('ERR_USAGE', { ...details, reason });
}

function convert(name: string, spec: FlagSpec, raw: string): string | number | boolean {
  if (spec.type === 'string') return raw;
  if (spec.type === 'number') {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw usageError(`--${name} takes a number, not "${raw}"`);
    return n;
  }
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw usageError(`--${name} is a switch: give it alone (or as --${name}=true|false), not "${raw}"`);
}

/**
 * Parses `args` against `specs`. Accepted forms: `--name value`,
 * `--name=value`, `-x value` for a declared short alias, `--switch` for a
 * boolean, and `--` to end the flags. A flag given twice is an error unless it
 * is `multiple`. A value may start with a single `-` (a negative number) but
 * not with `--` (that is the next flag, so the value is missing).
 * @param positionals whether bare arguments are allowed (default false).
 * @throws KisekiError ERR_USAGE for an unknown flag, a missing or wrong value,
 *   a repeated flag, or an unexpected bare argument.
 */
export function parseFlags<S extends FlagSpecs>(args: readonly string[], specs: S, options: { positionals?: boolean } = {}): ParsedFlags<S> {
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  const shorts = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) if (spec.short !== undefined) shorts.set(spec.short, name);

  const accept = (name: string, spec: FlagSpec, value: string | number | boolean): void => {
    if (spec.multiple === true) {
      const list = (values[name] as unknown[] | undefined) ?? [];
      list.push(value);
      values[name] = list;
      return;
    }
    if (name in values) throw usageError(`--${name} is given more than once`);
    values[name] = value;
  };

  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
    } else if (/^-[A-Za-z]$/.test(arg)) {
      const long = shorts.get(arg.slice(1));
      if (long === undefined) throw usageError(`unknown flag ${arg}`);
      name = long;
    } else {
      positionals.push(arg);
      continue;
    }
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (spec === undefined || name === '') throw usageError(`unknown flag --${name}`);
    if (spec.type === 'boolean') {
      accept(name, spec, inline === undefined ? true : convert(name, spec, inline));
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = args[i + 1];
      if (next === undefined || next.startsWith('--')) throw usageError(`--${name} needs a value`);
      raw = next;
      i++;
    }
    accept(name, spec, convert(name, spec, raw));
  }
  if (options.positionals !== true && positionals.length > 0) throw usageError(`unexpected argument ${positionals[0]}`);
  return { values: values as FlagValues<S>, positionals };
}

/**
 * The value of a required string flag, trimmed.
 * @throws KisekiError ERR_USAGE when it is absent or blank.
 */
export function requireFlag(values: Readonly<Record<string, unknown>>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v.trim() === '') throw usageError(`--${name} is required`);
  return v.trim();
}

/**
 * The value of `--data DIR` / `--data=DIR` in an argument list that another
 * parser reads in full later (the CLI resolves the data directory first).
 */
export function peekDataDir(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--') return undefined;
    if (args[i] === '--data') return args[i + 1];
    if (args[i]!.startsWith('--data=')) return args[i]!.slice('--data='.length);
  }
  return undefined;
}

const JST_OFFSET_MS = 9 * 3600_000;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const LOCAL_TIME_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/;

/**
 * A date or time given on the command line, read in JST (Asia/Tokyo, UTC+9,
 * no daylight saving) like every other date kiseki shows, as ms since the
 * epoch. A bare date `2026-12-31` means through the end of that day: the
 * result is the next day's 00:00 JST (the first instant no longer covered).
 * A time without a zone is JST; a time with `Z` or an offset is taken as it is.
 * @returns undefined when the text is not such a date or time.
 */
export function parseJstDate(text: string): number | undefined {
  const d = DATE_RE.exec(text);
  if (d !== null) {
    const [y, m, day] = [Number(d[1]), Number(d[2]), Number(d[3])];
    const t = new Date(Date.UTC(y, m - 1, day));
    if (t.getUTCFullYear() !== y || t.getUTCMonth() !== m - 1 || t.getUTCDate() !== day) return undefined;
    return Date.UTC(y, m - 1, day + 1) - JST_OFFSET_MS;
  }
  const l = LOCAL_TIME_RE.exec(text);
  if (l !== null) {
    const part = (i: number): number => (l[i] === undefined ? 0 : Number(l[i]));
    const [y, m, day, h, min, s] = [part(1), part(2), part(3), part(4), part(5), part(6)];
    const ms = l[7] === undefined ? 0 : Number(l[7].padEnd(3, '0'));
    const t = new Date(Date.UTC(y, m - 1, day));
    if (t.getUTCMonth() !== m - 1 || t.getUTCDate() !== day || h > 23 || min > 59 || s > 59) return undefined;
    return Date.UTC(y, m - 1, day, h, min, s, ms) - JST_OFFSET_MS;
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isFinite(t) ? t : undefined;
}
