/**
 * The verdict model (issue 13): the rule set's hits (engine/rules/) and the
 * factors (factors.ts) add up to one score; the verdict follows the rule
 * set's thresholds, with two guards that keep it honest about thin evidence:
 * black needs the file to have run, an intel hit or a behaviour of its own
 * (a download never run stays gray), and white is refused while any
 * behaviour or high-level Sigma detection stands. A trusted file prevalent
 * across the tenant's fleet is white unless something malicious stands
 * (behaviour, Sigma high or critical, an intel hit, an abused LOLBin), which
 * also takes the weight off every prevalence factor. The confidence says how
 * far the score is from the other verdicts and how many independent kinds of
 * evidence agree.
 */
import type { QuickReport, RuleHit, Verdict } from '../../core/contracts.js';
import type { CompiledRuleSet } from '../rules/evaluate.js';

export interface VerdictOutcome {
  hits: RuleHit[];
  score: number;
  verdict: Verdict;
  confidence: NonNullable<QuickReport['confidence']>;
}

/** Combines the rule set's hits and the factors into the verdict, its score and its confidence. */
export function decideVerdict(thresholds: CompiledRuleSet['thresholds'], ruleHits: readonly RuleHit[], factors: readonly RuleHit[], executed: boolean): VerdictOutcome {
  const behaviour = factors.filter((f) => f.group === 'behaviour');
  // A critical Sigma detection keeps a file from white; a high one (often a generic hunting rule) only weighs.
  const strongSigma = factors.some((f) => f.ruleId === 'sigma.critical');
  const intel = ruleHits.some((h) => h.ruleId.startsWith('intel.'));
  // Malicious signs always win over prevalence: a worm or an abused admin tool is common in a fleet too.
  const malicious =
    behaviour.length > 0 || intel || factors.some((f) => f.ruleId === 'sigma.critical' || f.ruleId === 'sigma.high') || ruleHits.some((h) => h.outcome === 'black' || (h.ruleId.startsWith('lolbin.') && (h.weight ?? 0) > 0));
  const weighed = malicious ? factors.map((f) => (f.group === 'prevalence' && (f.weight ?? 0) < 0 ? { ...f, weight: 0, detail: `${f.detail ?? ''}; not weighed: malicious signs stand` } : f)) : factors;
  const hits = [...ruleHits, ...weighed];
  let score = 0;
  for (const h of hits) score += h.weight ?? 0;
  const decisiveBlack = hits.some((h) => h.outcome === 'black');
  const decisiveWhite = hits.some((h) => h.outcome === 'white');
  const fleetWhite = malicious ? undefined : weighed.find((f) => f.ruleId === 'prevalence.trusted');
  let verdict: Verdict;
  if (decisiveBlack) verdict = 'black';
  else if (decisiveWhite) verdict = 'white';
  // Signed by Microsoft, on many devices for weeks, nothing malicious: white, unless the score alone says black.
  else if (fleetWhite !== undefined && score < thresholds.black) verdict = 'white';
  else if (score >= thresholds.black) verdict = executed || intel || behaviour.length > 0 ? 'black' : 'gray';
  else if (score <= thresholds.white) verdict = behaviour.length > 0 || strongSigma ? 'gray' : 'white';
  else verdict = 'gray';

  // Independent kinds of evidence pointing the verdict's way.
  const groups = new Set<string>();
  for (const h of hits) {
    const w = h.weight ?? 0;
    if ((verdict === 'white' && w < 0) || (verdict !== 'white' && w > 0)) groups.add(h.group ?? h.ruleId.slice(0, h.ruleId.indexOf('.')));
  }
  const positives = hits.filter((h) => (h.weight ?? 0) > 0).length;
  let level: 'high' | 'medium' | 'low';
  let reason: string;
  if (decisiveBlack || decisiveWhite) {
    level = 'high';
    reason = `decided by ${hits.find((h) => h.outcome !== undefined)!.ruleId}`;
  } else if (verdict === 'black') {
    const margin = score - thresholds.black;
    level = margin >= 30 || groups.size >= 3 ? 'high' : 'medium';
    reason = `score ${score} (black from ${thresholds.black}); evidence of ${groups.size} kind(s): ${[...groups].join(', ')}`;
  } else if (verdict === 'white') {
    level = score <= thresholds.confidentWhite && positives === 0 ? 'high' : 'medium';
    reason = `score ${score} (white at ${thresholds.white} or less); ${positives === 0 ? 'nothing suspicious seen' : `${positives} suspicious sign(s) outweighed`}`;
    if (fleetWhite !== undefined && score > thresholds.white) reason = `trusted, prevalent and nothing malicious: ${fleetWhite.detail ?? ''}; score ${score}${positives === 0 ? '' : `, ${positives} suspicious sign(s) outweighed`}`;
  } else {
    level = positives <= 1 ? 'low' : 'medium';
    const guard = score >= thresholds.black ? '; held at gray: the file did not run and did nothing of its own' : score <= thresholds.white ? '; held at gray: suspicious behaviour or a critical Sigma detection stands' : '';
    reason = positives <= 1 ? `thin evidence: score ${score}${guard}` : `score ${score} between white (${thresholds.white}) and black (${thresholds.black})${guard}`;
  }
  return { hits, score, verdict, confidence: { level, reason } };
}
