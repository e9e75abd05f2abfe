/**
 * The Sigma condition grammar (rules specification, "Condition"): `and`,
 * `or`, `not`, parentheses, `1 of x*`, `all of x*`, `1 of them`,
 * `all of them`, with the precedence or < and < not < x-of < parentheses.
 * Parsed once at load time into a tree whose leaves are search identifiers;
 * `x of` patterns are resolved against the rule's identifiers there, so an
 * unknown identifier or an empty pattern refuses the rule instead of
 * matching nothing at run time. Aggregations (`| count() …`, the Sigma 1
 * form) are refused: correlation rules replace them.
 */

/** A parsed condition. Leaves name search identifiers of the detection. */
export type CondNode =
  | { t: 'id'; name: string }
  | { t: 'and'; items: CondNode[] }
  | { t: 'or'; items: CondNode[] }
  | { t: 'not'; item: CondNode };

import { isKisekiError, KisekiError } from '../../core/errors.js';

export type ParseOutcome = { ok: true; node: CondNode } | { ok: false; reason: 'invalid_condition' | 'aggregation'; detail: string };

/** An unreadable condition; caught in this module and returned as an `invalid_condition` outcome. */
function parseError(detail: string): KisekiError {
  return new KisekiError('ERR_SIGMA_REFUSED', { reason: 'invalid_condition', detail });
}

function tokenize(text: string): string[] {
  const out: string[] = [];
  const re = /\s*(\(|\)|\||[^\s()|]+)/y;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  while (re.lastIndex < text.length && (m = re.exec(text)) !== null) out.push(m[1]!);
  if (text.slice(re.lastIndex).trim() !== '') throw parseError(`cannot read ${text.slice(re.lastIndex)}`);
  return out;
}

function globToRegex(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}

/**
 * Parses one condition string.
 * @param text the condition.
 * @param identifiers the search identifiers the detection defines.
 */
export function parseCondition(text: string, identifiers: readonly string[]): ParseOutcome {
  let tokens: string[];
  try {
    tokens = tokenize(text);
  } catch (err) {
    return { ok: false, reason: 'invalid_condition', detail: (err as Error).message };
  }
  if (tokens.includes('|')) return { ok: false, reason: 'aggregation', detail: text };
  let pos = 0;
  const peek = () => tokens[pos]?.toLowerCase();
  const known = new Set(identifiers);

  function parseOr(): CondNode {
    const items = [parseAnd()];
    while (peek() === 'or') {
      pos++;
      items.push(parseAnd());
    }
    return items.length === 1 ? items[0]! : { t: 'or', items };
  }
  function parseAnd(): CondNode {
    const items = [parseNot()];
    while (peek() === 'and') {
      pos++;
      items.push(parseNot());
    }
    return items.length === 1 ? items[0]! : { t: 'and', items };
  }
  function parseNot(): CondNode {
    if (peek() === 'not') {
      pos++;
      return { t: 'not', item: parseNot() };
    }
    return parsePrimary();
  }
  function parsePrimary(): CondNode {
    const tok = tokens[pos];
    if (tok === undefined) throw parseError('unexpected end');
    if (tok === '(') {
      pos++;
      const inner = parseOr();
      if (tokens[pos] !== ')') throw parseError('missing )');
      pos++;
      return inner;
    }
    const lower = tok.toLowerCase();
    if (tokens[pos + 1]?.toLowerCase() === 'of' && (lower === 'all' || lower === 'any' || /^\d+$/.test(lower))) {
      const target = tokens[pos + 2];
      if (target === undefined) throw parseError(`${tok} of what?`);
      pos += 3;
      const names =
        target.toLowerCase() === 'them' ? identifiers.filter((n) => !n.startsWith('_')) : identifiers.filter((n) => globToRegex(target).test(n));
      if (names.length === 0) throw parseError(`${tok} of ${target} names no search identifier`);
      const leaves: CondNode[] = names.map((name) => ({ t: 'id', name }));
      if (lower === 'all') return leaves.length === 1 ? leaves[0]! : { t: 'and', items: leaves };
      const n = lower === 'any' ? 1 : Number(lower);
      if (n === 1) return leaves.length === 1 ? leaves[0]! : { t: 'or', items: leaves };
      if (n < 1 || n > leaves.length) throw parseError(`${tok} of ${target}: only ${leaves.length} identifiers`);
      // N of M: an OR over every N-subset (M is small in practice).
      const subsets: CondNode[] = [];
      const pick = (start: number, chosen: CondNode[]) => {
        if (chosen.length === n) return void subsets.push({ t: 'and', items: [...chosen] });
        for (let i = start; i < leaves.length; i++) pick(i + 1, [...chosen, leaves[i]!]);
      };
      pick(0, []);
      return { t: 'or', items: subsets };
    }
    if (['and', 'or', 'not', 'of', ')'].includes(lower)) throw parseError(`unexpected ${tok}`);
    if (!known.has(tok)) throw parseError(`unknown search identifier ${tok}`);
    pos++;
    return { t: 'id', name: tok };
  }

  try {
    const node = parseOr();
    if (pos !== tokens.length) throw parseError(`unexpected ${tokens[pos]}`);
    return { ok: true, node };
  } catch (err) {
    if (isKisekiError(err, 'ERR_SIGMA_REFUSED')) return { ok: false, reason: 'invalid_condition', detail: String(err.details?.detail) };
    throw err;
  }
}
