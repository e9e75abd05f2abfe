/**
 * `kiseki sigma list [--rules DIR] [--json]` and
 * `kiseki sigma test --rules DIR --cases DIR [--json]`: the rules a
 * directory (default: the shipped pack) loads and why the others are
 * refused, and SigmaHQ's regression cases run through the import mapping
 * and the matcher. bin/kiseki.ts only dispatches here.
 *
 * Exit codes: 0 done (test: every case passed), 1 a case failed or the run
 * failed, 64 usage error.
 */
import { resolve } from 'node:path';
import { COMMON_FLAGS, parseFlags, usageError } from '../../core/cli-flags.js';
import { describeError, isKisekiError } from '../../core/errors.js';
import { runConformance } from './conformance.js';
import { defaultRulesDir, loadSigmaRules } from './loader.js';

export const SIGMA_USAGE = `kiseki sigma — Sigma detection rules (docs/SIGMA.md)

Usage:
  kiseki sigma list [--rules DIR] [--json]          loaded rules, refused rules with reasons
  kiseki sigma test --rules DIR --cases DIR [--json] run SigmaHQ regression cases
  kiseki sigma detections --tenant S ...            stored detections (kiseki sigma detections --help)
  kiseki sigma hunt --tenant S [--since D] ...      rules over stored trails (kiseki sigma hunt --help)

  --rules DIR   a directory of Sigma rules, searched recursively (list: default the shipped pack)
  --cases DIR   SigmaHQ regression data (info.yml + evtx_dump JSON per case)
`;

/** Where the command writes. */
export interface SigmaIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * Entry point of `kiseki sigma`.
 * @param args the arguments after `sigma`.
 * @returns the process exit code.
 */
export async function runSigmaCommand(args: string[], io: SigmaIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    const [sub, ...rest] = args;
    const { values } = parseFlags(rest, { ...COMMON_FLAGS, rules: { type: 'string' }, cases: { type: 'string' }, json: { type: 'boolean' } });
    if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h' || values.help) {
      io.stdout.write(SIGMA_USAGE);
      return 0;
    }
    const json = values.json === true;
    if (sub === 'list') {
      if (values.cases !== undefined) throw usageError('--cases belongs to sigma test');
      const dir = typeof values.rules === 'string' ? resolve(values.rules) : defaultRulesDir();
      const loaded = loadSigmaRules(dir);
      if (json) {
        io.stdout.write(
          `${JSON.stringify({
            dir,
            files: loaded.files,
            loaded: loaded.rules.length,
            refusedByReason: loaded.refusedByReason,
            rules: loaded.rules.map((r) => ({ id: r.info.id, title: r.info.title, level: r.info.level, severity: r.info.severity, status: r.info.status, author: r.info.author, logsource: r.info.logsource, kinds: [...r.info.kinds, ...r.info.prefixes.map((p) => `${p}*`)], file: r.info.file })),
            refused: loaded.refused,
          })}\n`,
        );
        return 0;
      }
      for (const r of loaded.rules) io.stdout.write(`${r.info.id}  ${r.info.severity.padEnd(11)} ${r.info.logsource.padEnd(22)} ${r.info.title}\n`);
      for (const r of loaded.refused) io.stdout.write(`refused  ${r.reason.padEnd(22)} ${r.file}  ${r.detail}\n`);
      const reasons = Object.entries(loaded.refusedByReason).map(([k, n]) => `${k} ${n}`).join(', ');
      io.stdout.write(`${loaded.rules.length} of ${loaded.files} rule files loaded from ${dir}${loaded.refused.length > 0 ? `; refused: ${reasons}` : ''}\n`);
      return 0;
    }
    if (sub === 'test') {
      if (typeof values.rules !== 'string' || typeof values.cases !== 'string') throw usageError('sigma test needs --rules DIR and --cases DIR');
      const result = runConformance(resolve(values.rules), resolve(values.cases));
      if (json) io.stdout.write(`${JSON.stringify(result)}\n`);
      else {
        for (const f of result.failed) io.stdout.write(`FAIL ${f.case} (${f.ruleId}): ${f.reason}\n`);
        const pct = result.cases === 0 ? 0 : (100 * result.passed) / result.cases;
        io.stdout.write(`${result.passed} of ${result.cases} cases passed (${pct.toFixed(1)} %)\n`);
      }
      return result.failed.length === 0 && result.cases > 0 ? 0 : 1;
    }
    throw usageError(`unknown sigma command ${sub}`);
  } catch (err) {
    if (isKisekiError(err, 'ERR_USAGE')) {
      io.stderr.write(`kiseki sigma: ${describeError(err)}\n\n${SIGMA_USAGE}`);
      return 64;
    }
    io.stderr.write(`kiseki sigma: ${isKisekiError(err) ? describeError(err) : err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
