/**
 * Which tenant a syslog message belongs to: the token of its
 * `[kiseki@32473 token="…"]` structured-data element when it has one (a
 * relay that forwards many customers' logs), else the sender's address
 * matched against each tenant's CIDR list, the longest prefix winning. The
 * routes come from a JSON file (`syslog.routesFile`, docs/NETLOG.md);
 * tokens are kept only as SHA-256 digests in memory.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import { KisekiError } from '../../core/errors.js';

/** One tenant's routes as the routes file states them. */
export interface SyslogRoute {
  supportId: string;
  /** Sender networks, e.g. `10.1.0.0/16`, `2001:db8::/32`, or a bare address. */
  cidrs?: string[];
  /** Shared secret a relay puts in `[kiseki@32473 token="…"]`. */
  token?: string;
}

const routesSchema = z
  .object({
    tenants: z.array(
      z
        .object({
          supportId: z.string().min(1).max(64),
          cidrs: z.array(z.string().min(1)).optional(),
          token: z.string().min(16).max(256).optional(),
        })
        .strict(),
    ),
  })
  .strict();

/** Resolves a message to a support ID, or undefined (counted as `unknown_tenant`). */
export interface SyslogRouter {
  route(sourceAddress: string, token: string | undefined): string | undefined;
  /** Tenants with at least one route. */
  readonly tenants: readonly string[];
}

interface Net {
  v6: boolean;
  bits: bigint;
  prefix: number;
  supportId: string;
}

/** The address as a 32- or 128-bit integer; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as IPv4. */
function addressBits(addr: string): { v6: boolean; bits: bigint } | undefined {
  const a = addr.startsWith('::ffff:') && isIP(addr.slice(7)) === 4 ? addr.slice(7) : addr;
  const kind = isIP(a);
  if (kind === 4) {
    let v = 0n;
    for (const part of a.split('.')) v = (v << 8n) | BigInt(Number(part));
    return { v6: false, bits: v };
  }
  if (kind === 6) {
    const [head, tail] = a.includes('::') ? (a.split('::') as [string, string]) : [a, undefined];
    const parse = (s: string): string[] => (s === '' ? [] : s.split(':'));
    let groups = parse(head);
    let tailGroups = tail === undefined ? [] : parse(tail);
    // An embedded IPv4 tail counts as two groups.
    const expand = (gs: string[]): string[] => gs.flatMap((g) => (g.includes('.') ? ipv4Groups(g) : [g]));
    groups = expand(groups);
    tailGroups = expand(tailGroups);
    const fill = tail === undefined ? [] : new Array<string>(8 - groups.length - tailGroups.length).fill('0');
    let v = 0n;
    for (const g of [...groups, ...fill, ...tailGroups]) v = (v << 16n) | BigInt(parseInt(g, 16));
    return { v6: true, bits: v };
  }
  return undefined;
}

function ipv4Groups(s: string): string[] {
  const p = s.split('.').map(Number);
  return [((p[0]! << 8) | p[1]!).toString(16), ((p[2]! << 8) | p[3]!).toString(16)];
}

function parseCidr(cidr: string, supportId: string): Net {
  const [addr, len] = cidr.split('/') as [string, string | undefined];
  const a = addressBits(addr);
  const width = a?.v6 ? 128 : 32;
  const prefix = len === undefined ? width : Number(len);
  if (a === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > width) {
    throw new KisekiError('ERR_SYSLOG_ROUTES_INVALID', { supportId, reason: `not a CIDR: ${cidr}` });
  }
  const shift = BigInt(width - prefix);
  return { v6: a.v6, bits: (a.bits >> shift) << shift, prefix, supportId };
}

const digest = (token: string): string => createHash('sha256').update(token).digest('hex');

/**
 * Builds a router from routes (validated: a CIDR or a token may name one tenant only).
 * @throws KisekiError ERR_SYSLOG_ROUTES_INVALID
 */
export function createSyslogRouter(routes: readonly SyslogRoute[]): SyslogRouter {
  const nets: Net[] = [];
  const tokens = new Map<string, string>();
  for (const r of routes) {
    for (const c of r.cidrs ?? []) {
      const net = parseCidr(c, r.supportId);
      const dup = nets.find((n) => n.v6 === net.v6 && n.prefix === net.prefix && n.bits === net.bits);
      if (dup !== undefined && dup.supportId !== r.supportId) throw new KisekiError('ERR_SYSLOG_ROUTES_INVALID', { supportId: r.supportId, reason: `${c} is routed to two tenants` });
      nets.push(net);
    }
    if (r.token !== undefined) {
      const d = digest(r.token);
      if (tokens.has(d) && tokens.get(d) !== r.supportId) throw new KisekiError('ERR_SYSLOG_ROUTES_INVALID', { supportId: r.supportId, reason: 'a token is routed to two tenants' });
      tokens.set(d, r.supportId);
    }
  }
  // Longest prefix first: the first match is the most specific.
  nets.sort((a, b) => b.prefix - a.prefix);
  // Senders are few and long-lived (connections, relays): cache per address, bounded.
  const cache = new Map<string, string | null>();
  return {
    tenants: [...new Set(routes.map((r) => r.supportId))],
    route(sourceAddress, token) {
      if (token !== undefined) {
        const byToken = tokens.get(digest(token));
        if (byToken !== undefined) return byToken;
      }
      const cached = cache.get(sourceAddress);
      if (cached !== undefined) return cached ?? undefined;
      const a = addressBits(sourceAddress);
      let found: string | null = null;
      if (a !== undefined) {
        const width = a.v6 ? 128 : 32;
        for (const n of nets) {
          if (n.v6 !== a.v6) continue;
          const shift = BigInt(width - n.prefix);
          if ((a.bits >> shift) << shift === n.bits) {
            found = n.supportId;
            break;
          }
        }
      }
      if (cache.size >= 10_000) cache.clear();
      cache.set(sourceAddress, found);
      return found ?? undefined;
    },
  };
}

/**
 * Reads and validates a routes file: `{ "tenants": [{ "supportId", "cidrs"?, "token"? }] }`.
 * @throws KisekiError ERR_SYSLOG_ROUTES_INVALID
 */
export function loadSyslogRoutes(path: string): SyslogRoute[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new KisekiError('ERR_SYSLOG_ROUTES_INVALID', { path, reason: 'not readable JSON' }, { cause });
  }
  const parsed = routesSchema.safeParse(json);
  if (!parsed.success) throw new KisekiError('ERR_SYSLOG_ROUTES_INVALID', { path, reason: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
  return parsed.data.tenants.map((t) => ({ supportId: t.supportId, ...(t.cidrs ? { cidrs: t.cidrs } : {}), ...(t.token ? { token: t.token } : {}) }));
}
