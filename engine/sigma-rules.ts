/**
 * Where a shard's Sigma rules come from: the default pack and an optional
 * directory (`--sigma DIR`), loaded and compiled once, and loaded again when
 * a file under the directory changes (a shard checks every `reloadIntervalMs`;
 * a check is a directory walk and a stat per file, no read). The default pack
 * ships with the program and changes only with it, so it is not watched: its
 * 1,912 stats every 5 s blocked the shard thread for nothing.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createSigmaMatcher, defaultRulesDir, loadSigmaRules, type ProcessResolver, type Refusal, type SigmaMatcher } from './sigma/index.js';
import type { CompiledRule } from './sigma/index.js';

/** The Sigma part of a shard's configuration. */
export interface SigmaRuleSourceOptions {
  defaultPack: boolean;
  dir?: string;
}

/** A load: the matcher over every rule, and what was refused. */
export interface SigmaRuleLoad {
  matcher: SigmaMatcher;
  rules: readonly CompiledRule[];
  refused: Refusal[];
}

export interface SigmaRuleSource {
  /** Loads and compiles every rule now (rule ids seen twice keep the first: the default pack wins). */
  load(resolver: ProcessResolver): SigmaRuleLoad;
  /** True when a rule file was added, removed or changed since the last `load` (or `changed`) call. */
  changed(): boolean;
}

function fingerprint(dirs: readonly string[]): string {
  const parts: string[] = [];
  const walk = (dir: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir).sort();
    } catch {
      parts.push(`${dir}:missing`);
      return;
    }
    for (const e of entries) {
      const p = join(dir, e);
      try {
        const st = statSync(p);
        if (st.isDirectory()) walk(p);
        else if (/\.ya?ml$/i.test(e)) parts.push(`${p}:${st.size}:${st.mtimeMs}`);
      } catch {
        // Removed between readdir and stat: the next check sees it gone.
      }
    }
  };
  for (const d of dirs) walk(d);
  return parts.join('\n');
}

/** A rule source over the default pack (when on) and `dir`. */
export function createSigmaRuleSource(options: SigmaRuleSourceOptions): SigmaRuleSource {
  const dirs = [...(options.defaultPack ? [defaultRulesDir()] : []), ...(options.dir === undefined ? [] : [options.dir])];
  const watched = options.dir === undefined ? [] : [options.dir];
  let seen = fingerprint(watched);
  return {
    load(resolver) {
      seen = fingerprint(watched);
      const rules: CompiledRule[] = [];
      const refused: Refusal[] = [];
      const ids = new Set<string>();
      for (const dir of dirs) {
        const loaded = loadSigmaRules(dir);
        refused.push(...loaded.refused);
        for (const r of loaded.rules) {
          if (ids.has(r.info.id)) continue;
          ids.add(r.info.id);
          rules.push(r);
        }
      }
      return { matcher: createSigmaMatcher(rules, { resolver }), rules, refused };
    },
    changed() {
      if (watched.length === 0) return false;
      const now = fingerprint(watched);
      if (now === seen) return false;
      seen = now;
      return true;
    },
  };
}
