/**
 * Threat-intelligence lists (known-bad SHA-256 hashes, domains, IPs), loaded
 * from plain text files in the intel directory (DATA/intel by default):
 * `sha256.txt`, `domains.txt`, `ips.txt`, one entry per line, `#` comments.
 * `reloadIfChanged()` re-reads them when a file's mtime or size changes, so an
 * operator updates a list by writing the file; no restart.
 * A domain entry also matches its subdomains.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type IntelKind = 'sha256' | 'domain' | 'ip';

const FILES: Record<IntelKind, string> = { sha256: 'sha256.txt', domain: 'domains.txt', ip: 'ips.txt' };

export interface ThreatIntel {
  has(kind: IntelKind, value: string): boolean;
  /** Re-reads files that changed; returns true when anything was reloaded. */
  reloadIfChanged(): boolean;
  counts(): Record<IntelKind, number>;
}

function parseList(text: string): Set<string> {
  const set = new Set<string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/#.*/, '').trim().toLowerCase();
    if (line !== '') set.add(line);
  }
  return set;
}

/** Host name of a URL, or the value itself when it is not a URL. */
function hostOf(value: string): string {
  const v = value.trim().toLowerCase();
  if (v.includes('://')) {
    try {
      return new URL(v).hostname;
    } catch {
      return v;
    }
  }
  return v.endsWith('.') ? v.slice(0, -1) : v;
}

export function createThreatIntel(dir: string | undefined): ThreatIntel {
  const sets: Record<IntelKind, Set<string>> = { sha256: new Set(), domain: new Set(), ip: new Set() };
  const stamps: Record<IntelKind, string> = { sha256: '', domain: '', ip: '' };

  function reloadIfChanged(): boolean {
    if (dir === undefined) return false;
    let changed = false;
    for (const kind of Object.keys(FILES) as IntelKind[]) {
      const file = join(dir, FILES[kind]);
      let stamp = 'missing';
      try {
        const st = statSync(file);
        stamp = `${st.mtimeMs}:${st.size}`;
      } catch {
        // A missing list is an empty list.
      }
      if (stamp === stamps[kind]) continue;
      stamps[kind] = stamp;
      sets[kind] = stamp === 'missing' ? new Set() : parseList(readFileSync(file, 'utf8'));
      changed = true;
    }
    return changed;
  }
  reloadIfChanged();

  return {
    has(kind, value) {
      if (kind === 'domain') {
        let host = hostOf(value);
        // example.com on the list matches a.b.example.com.
        for (;;) {
          if (sets.domain.has(host)) return true;
          const dot = host.indexOf('.');
          if (dot < 0) return false;
          host = host.slice(dot + 1);
        }
      }
      return sets[kind].has(value.trim().toLowerCase());
    },
    reloadIfChanged,
    counts: () => ({ sha256: sets.sha256.size, domain: sets.domain.size, ip: sets.ip.size }),
  };
}
