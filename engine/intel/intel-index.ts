/**
 * The threat-intelligence index: every indicator from every source (plain
 * lists, STIX 2.1 bundles, TAXII collections, MISP feeds) in structures whose
 * lookup cost does not grow with the number of indicators:
 *  - IPv4 and IPv6 addresses and CIDRs in one binary trie per family (a walk
 *    of at most 32 or 128 bits, collecting the entries on the path);
 *  - domains in a map keyed by the name, looked up for the name and each of
 *    its parent suffixes (a listed `example.com` matches `a.b.example.com`; a
 *    walk of at most the name's label count);
 *  - URLs and SHA-256 hashes in plain maps.
 * Built once per reload (the index is immutable); entries carry their source,
 * confidence, validity window and labels, and a lookup at time `at` returns
 * only those valid then, so expiry needs no sweep.
 */

/** What an indicator is about. */
export type IntelIndicatorKind = 'ip' | 'domain' | 'url' | 'sha256';

/** One indicator as a source gave it. */
export interface IntelEntry {
  kind: IntelIndicatorKind;
  /** Normalised: lower-case; an IP or a CIDR (`10.0.0.0/8`) for `ip`; a host name without trailing dot for `domain`. */
  value: string;
  /** Where it came from: `list:ips.txt`, `stix:<file>`, `taxii:<server>`, `misp:<feed>`. */
  source: string;
  /** 0–100 (STIX confidence scale). */
  confidence: number;
  /** Valid from (ms); absent: always. */
  validFrom?: number;
  /** Valid until (ms, exclusive); absent: no expiry. */
  validUntil?: number;
  labels: string[];
  /** The source's own id (STIX indicator id, MISP attribute uuid). */
  ref?: string;
  /** A name for people (STIX indicator name, MISP event info). */
  name?: string;
}

/** An entry that matched, with the value looked up. */
export interface IntelMatch {
  entry: IntelEntry;
  /** The observed value that matched (the IP, the host name, the URL, the hash). */
  observed: string;
}

/** Counts by kind, and how many entries had expired when the index was built. */
export interface IntelCounts {
  ip: number;
  domain: number;
  url: number;
  sha256: number;
}

/** The immutable, indexed set of indicators. */
export interface IntelIndex {
  /** Entries for an IPv4 or IPv6 address valid at `at` (exact addresses and every CIDR containing it). */
  matchIp(ip: string, at: number): IntelEntry[];
  /** Entries for a host name or any of its parent domains, valid at `at`; a URL is reduced to its host. */
  matchDomain(host: string, at: number): IntelEntry[];
  /** Entries for a URL (exact, normalised), valid at `at`. */
  matchUrl(url: string, at: number): IntelEntry[];
  matchSha256(hash: string, at: number): IntelEntry[];
  counts(): IntelCounts;
  /** Every entry (for the API's listing and tests). */
  entries(): readonly IntelEntry[];
}

interface TrieNode {
  zero: TrieNode | undefined;
  one: TrieNode | undefined;
  entries: IntelEntry[] | undefined;
}

const newNode = (): TrieNode => ({ zero: undefined, one: undefined, entries: undefined });

/** Parsed address: bytes (4 or 16) or undefined when `text` is not an IP address. */
export function parseIp(text: string): Uint8Array | undefined {
  const s = text.trim();
  if (s.includes(':')) return parseIpv6(s);
  return parseIpv4(s);
}

function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIpv6(input: string): Uint8Array | undefined {
  let s = input.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const lastColon = s.lastIndexOf(':');
  const tail = s.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIpv4(tail);
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, lastColon + 1)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const rest = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  return out;
}

/** `10.0.0.0/8` → address bytes and prefix length; a bare address is a full-length prefix. */
export function parseCidr(text: string): { bytes: Uint8Array; prefix: number } | undefined {
  const slash = text.indexOf('/');
  const bytes = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (bytes === undefined) return undefined;
  const max = bytes.length * 8;
  if (slash < 0) return { bytes, prefix: max };
  const p = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(p) || Number(p) > max) return undefined;
  return { bytes, prefix: Number(p) };
}

/** Lower-case host name without trailing dot; a URL gives its host. Undefined when empty. */
export function normaliseHost(value: string): string | undefined {
  let v = value.trim().toLowerCase();
  if (v.includes('://')) {
    try {
      v = new URL(v).hostname;
    } catch {
      return undefined;
    }
  }
  if (v.endsWith('.')) v = v.slice(0, -1);
  return v === '' ? undefined : v;
}

/** A URL as the index keys it: parsed and serialised (lower-case scheme and host, default port dropped); the text trimmed when it does not parse. */
export function normaliseUrl(value: string): string {
  const v = value.trim();
  try {
    return new URL(v).href;
  } catch {
    return v.toLowerCase();
  }
}

const validAt = (e: IntelEntry, at: number): boolean => (e.validFrom === undefined || at >= e.validFrom) && (e.validUntil === undefined || at < e.validUntil);

/**
 * Builds the index. Entries whose `value` does not parse for their kind are
 * left out and counted in `rejected`.
 */
export function createIntelIndex(input: Iterable<IntelEntry>): IntelIndex & { rejected: number } {
  const v4 = newNode();
  const v6 = newNode();
  const domains = new Map<string, IntelEntry[]>();
  const urls = new Map<string, IntelEntry[]>();
  const hashes = new Map<string, IntelEntry[]>();
  const all: IntelEntry[] = [];
  const counts: IntelCounts = { ip: 0, domain: 0, url: 0, sha256: 0 };
  let rejected = 0;
  const push = (m: Map<string, IntelEntry[]>, k: string, e: IntelEntry): void => {
    const list = m.get(k);
    if (list === undefined) m.set(k, [e]);
    else list.push(e);
  };
  for (const e of input) {
    switch (e.kind) {
      case 'ip': {
        const c = parseCidr(e.value);
        if (c === undefined) {
          rejected++;
          continue;
        }
        let node = c.bytes.length === 4 ? v4 : v6;
        for (let bit = 0; bit < c.prefix; bit++) {
          const set = (c.bytes[bit >> 3]! >> (7 - (bit & 7))) & 1;
          if (set === 1) node = node.one ??= newNode();
          else node = node.zero ??= newNode();
        }
        (node.entries ??= []).push(e);
        break;
      }
      case 'domain': {
        const h = normaliseHost(e.value);
        if (h === undefined) {
          rejected++;
          continue;
        }
        push(domains, h, e);
        break;
      }
      case 'url':
        push(urls, normaliseUrl(e.value), e);
        break;
      case 'sha256': {
        const h = e.value.trim().toLowerCase();
        if (!/^[0-9a-f]{64}$/.test(h)) {
          rejected++;
          continue;
        }
        push(hashes, h, e);
        break;
      }
      default:
        rejected++;
        continue;
    }
    counts[e.kind]++;
    all.push(e);
  }
  const valid = (list: IntelEntry[] | undefined, at: number, out: IntelEntry[]): void => {
    if (list === undefined) return;
    for (const e of list) if (validAt(e, at)) out.push(e);
  };
  return {
    rejected,
    matchIp(ip, at) {
      const out: IntelEntry[] = [];
      const bytes = parseIp(ip);
      if (bytes === undefined) return out;
      let node: TrieNode | undefined = bytes.length === 4 ? v4 : v6;
      const bits = bytes.length * 8;
      for (let bit = 0; node !== undefined; bit++) {
        valid(node.entries, at, out);
        if (bit === bits) break;
        node = ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) === 1 ? node.one : node.zero;
      }
      return out;
    },
    matchDomain(host, at) {
      const out: IntelEntry[] = [];
      let h = normaliseHost(host);
      if (h === undefined || domains.size === 0) return out;
      for (;;) {
        valid(domains.get(h), at, out);
        const dot = h.indexOf('.');
        if (dot < 0) return out;
        h = h.slice(dot + 1);
      }
    },
    matchUrl(url, at) {
      const out: IntelEntry[] = [];
      valid(urls.get(normaliseUrl(url)), at, out);
      return out;
    },
    matchSha256(hash, at) {
      const out: IntelEntry[] = [];
      valid(hashes.get(hash.trim().toLowerCase()), at, out);
      return out;
    },
    counts: () => ({ ...counts }),
    entries: () => all,
  };
}
