/**
 * The `kiseki sigma` commands that read the data directory:
 * `kiseki sigma detections --tenant S [--device TMID] [--rule ID] [--since D] [--limit N] [--json]`
 * lists stored detections; `kiseki sigma hunt --tenant S [--since D]
 * [--rule ID | --rules DIR] [--json]` runs rules over the stored trails (cold
 * archives and the hot store), with a progress bar on a terminal.
 * bin/kiseki.ts dispatches these two here; the others go to engine/sigma/cli.ts.
 *
 * Exit codes: 0 done, 1 the run failed, 64 usage error.
 */
import { resolve } from 'node:path';
import { COMMON_FLAGS, parseFlags, usageError } from '../core/cli-flags.js';
import { describeError, isKisekiError } from '../core/errors.js';
import { openHotStore } from '../storage/index.js';
import { runSigmaHunt } from './sigma-hunt.js';
import { defaultRulesDir, loadSigmaRules } from './sigma/index.js';

export const SIGMA_STORE_USAGE = `kiseki sigma detections|hunt — stored detections, hunting history (docs/SIGMA.md)

Usage:
  kiseki sigma detections --tenant S [--device TMID] [--rule ID] [--since D] [--limit N] [--json] [--data DIR]
  kiseki sigma hunt --tenant S [--since D] [--rule ID | --rules DIR] [--json] [--data DIR]

  --since D   7d, 12h, 30m, a date (2026-11-20) or ms since the epoch (default: 7d)
  --rules DIR rules to hunt with (default: the shipped pack); --rule ID keeps one rule of them
`;

export interface SigmaStoreIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** The data directory (flags and environment resolved by the caller). */
  dataDir: string;
  now?: number;
}

/**
 * Reads `--since`: a duration back from `now` (`7d`, `12h`, `30m`), a date or date-time, or ms.
 * @throws KisekiError ERR_USAGE when it is none of those.
 */
export function parseSince(text: string, now: number): number {
  const d = /^(\d+)([dhm])$/.exec(text);
  if (d !== null) return now - Number(d[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[d[2] as 'd' | 'h' | 'm'];
  if (/^\d{10,}$/.test(text)) return Number(text);
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw usageError(`--since ${text}: expected 7d, 12h, 30m, a date or ms since the epoch`);
  return ms;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Entry point of `kiseki sigma detections` and `kiseki sigma hunt`; returns the exit code. */
export async function runSigmaStoreCommand(args: string[], io: SigmaStoreIo): Promise<number> {
  try {
    const [sub, ...rest] = args;
    const { values } = parseFlags(rest, {
      ...COMMON_FLAGS,
      tenant: { type: 'string' },
      device: { type: 'string' },
      rule: { type: 'string' },
      rules: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'number' },
      json: { type: 'boolean' },
    });
    if (values.help) {
      io.stdout.write(SIGMA_STORE_USAGE);
      return 0;
    }
    if (typeof values.tenant !== 'string') throw usageError(`sigma ${sub} needs --tenant S`);
    const tenant = values.tenant;
    const now = io.now ?? Date.now();
    const sinceMs = parseSince(typeof values.since === 'string' ? values.since : '7d', now);
    const json = values.json === true;
    const store = openHotStore({ dataDir: io.dataDir });
    try {
      if (sub === 'detections') {
        if (values.rules !== undefined) throw usageError('--rules belongs to sigma hunt');
        const limit = typeof values.limit === 'number' ? values.limit : 100;
        const out = [];
        for (const d of store.detections.scanTenant(tenant)) {
          if (d.at < sinceMs) break;
          if (typeof values.device === 'string' && d.tmid !== values.device) continue;
          if (typeof values.rule === 'string' && d.ruleId !== values.rule) continue;
          out.push(d);
          if (out.length >= limit) break;
        }
        if (json) io.stdout.write(`${JSON.stringify({ supportId: tenant, since: sinceMs, detections: out })}\n`);
        else {
          for (const d of out) {
            io.stdout.write(`${iso(d.at)}  ${d.severity.padEnd(11)} ${d.computer}  ${d.title} (${d.ruleId})  ${d.image}${d.repeats > 0 ? `  +${d.repeats} repeats` : ''}\n`);
          }
          io.stdout.write(`${out.length} detection${out.length === 1 ? '' : 's'} of ${tenant} since ${iso(sinceMs)}\n`);
        }
        return 0;
      }
      if (sub === 'hunt') {
        if (values.device !== undefined || values.limit !== undefined) throw usageError('--device and --limit belong to sigma detections');
        const dir = typeof values.rules === 'string' ? resolve(values.rules) : defaultRulesDir();
        let rules = loadSigmaRules(dir).rules;
        if (typeof values.rule === 'string') {
          const id = values.rule;
          rules = rules.filter((r) => r.info.id === id);
          if (rules.length === 0) throw usageError(`no rule ${id} loaded from ${dir}`);
        }
        const bar = io.stderr.isTTY === true;
        let lastShown = -1;
        const result = runSigmaHunt({
          store,
          dataDir: io.dataDir,
          supportId: tenant,
          sinceMs,
          rules,
          onProgress: ({ done, total }) => {
            if (!bar) return;
            const pct = total === 0 ? 100 : Math.floor((100 * done) / total);
            if (pct === lastShown) return;
            lastShown = pct;
            const filled = Math.round(pct / 5);
            io.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] ${pct}% ${done}/${total} batches`);
          },
        });
        if (bar) io.stderr.write('\n');
        if (json) io.stdout.write(`${JSON.stringify(result)}\n`);
        else {
          for (const h of result.hits) io.stdout.write(`${iso(h.ts)}  ${h.severity.padEnd(11)} ${h.computer}  ${h.title} (${h.ruleId})  ${h.image}  [${h.source}]\n`);
          io.stdout.write(`${result.hits.length} hit${result.hits.length === 1 ? '' : 's'} of ${result.rules} rules over ${result.events} events in ${result.batches} batches of ${tenant} since ${iso(sinceMs)}\n`);
        }
        return 0;
      }
      throw usageError(`unknown sigma command ${sub}`);
    } finally {
      await store.close();
    }
  } catch (err) {
    if (isKisekiError(err, 'ERR_USAGE')) {
      io.stderr.write(`kiseki sigma: ${describeError(err)}\n\n${SIGMA_STORE_USAGE}`);
      return 64;
    }
    io.stderr.write(`kiseki sigma: ${isKisekiError(err) ? describeError(err) : err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
