import { describe, expect, it } from 'vitest';
import { parseCondition, type CondNode } from './condition.js';

/** Evaluates a parsed condition with the given identifiers true. */
function evalNode(n: CondNode, truth: Set<string>): boolean {
  switch (n.t) {
    case 'id':
      return truth.has(n.name);
    case 'not':
      return !evalNode(n.item, truth);
    case 'and':
      return n.items.every((x) => evalNode(x, truth));
    case 'or':
      return n.items.some((x) => evalNode(x, truth));
  }
}

function check(cond: string, ids: string[], trueIds: string[]): boolean {
  const p = parseCondition(cond, ids);
  if (!p.ok) throw new Error(`${p.reason}: ${p.detail}`);
  return evalNode(p.node, new Set(trueIds));
}

const IDS = ['selection', 'selection_img', 'selection_cli', 'filter_main', 'filter_optional', 'keywords', '_internal'];

describe('condition grammar (rules specification, Condition)', () => {
  it.each([
    // [condition, true identifiers, expected]
    ['selection', ['selection'], true],
    ['selection', [], false],
    ['keywords or selection', ['keywords'], true],
    ['selection and keywords', ['selection'], false],
    ['selection and not filter_main', ['selection'], true],
    ['selection and not filter_main', ['selection', 'filter_main'], false],
    ['not not selection', ['selection'], true],
    ['selection_img and (keywords or selection_cli)', ['selection_img', 'selection_cli'], true],
    ['selection_img and (keywords or selection_cli)', ['selection_cli'], false],
    // Precedence: or < and < not.
    ['keywords or selection and filter_main', ['keywords'], true],
    ['keywords or selection and filter_main', ['selection'], false],
    ['not keywords and selection', ['selection'], true],
    ['(keywords or selection) and filter_main', ['keywords'], false],
    // x of patterns.
    ['1 of selection*', ['selection_cli'], true],
    ['1 of selection*', ['keywords'], false],
    ['all of selection*', ['selection', 'selection_img'], false],
    ['all of selection*', ['selection', 'selection_img', 'selection_cli'], true],
    ['all of selection_* and not 1 of filter_*', ['selection_img', 'selection_cli', 'filter_optional'], false],
    ['all of selection_* and not 1 of filter_*', ['selection_img', 'selection_cli'], true],
    ['1 of selection* and keywords', ['selection', 'keywords'], true],
    ['any of filter*', ['filter_main'], true],
    ['2 of selection*', ['selection', 'selection_cli'], true],
    ['2 of selection*', ['selection_cli'], false],
    // them: every identifier not starting with an underscore.
    ['1 of them', ['_internal'], false],
    ['1 of them', ['keywords'], true],
    ['all of them', ['selection', 'selection_img', 'selection_cli', 'filter_main', 'filter_optional', 'keywords'], true],
    ['ALL OF them', ['selection', 'selection_img', 'selection_cli', 'filter_main', 'filter_optional'], false],
    ['( (selection and keywords) or (filter_main) ) and not _internal', ['filter_main'], true],
  ])('%s with %j → %s', (cond, trueIds, want) => {
    expect(check(cond, IDS, trueIds)).toBe(want);
  });

  it.each([
    ['selection and', 'invalid_condition'],
    ['nope', 'invalid_condition'],
    ['1 of nothing*', 'invalid_condition'],
    ['(selection', 'invalid_condition'],
    ['selection keywords', 'invalid_condition'],
    ['selection | count() by User > 5', 'aggregation'],
    ['5 of selection*', 'invalid_condition'],
  ])('refuses %j (%s)', (cond, reason) => {
    const p = parseCondition(cond, IDS);
    expect(p.ok ? 'ok' : p.reason).toBe(reason);
  });
});
