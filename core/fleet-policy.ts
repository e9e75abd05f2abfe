/**
 * The pure rules of fleet management (issue 16, docs/FLEET.md), shared by
 * the agent simulator (which applies them at the source), the shards (which
 * apply them to whatever still arrives) and the API (which validates them):
 * log tuning filters, the USB allow-list, and the stable device choice of a
 * staged upgrade. No I/O here; the records live in storage/fleet.ts.
 */
import { createHash } from 'node:crypto';
import type { AgentFleetPolicy, TuningFilter, UsbAllowRule } from './contracts.js';
import { globToRegExp } from './glob.js';

/** The fleet policy of a tenant nobody configured: block mode, no tuning, no USB control. */
export const DEFAULT_AGENT_FLEET_POLICY: Readonly<AgentFleetPolicy> = Object.freeze({ version: 0, mode: 'block', tuning: [], usb: { control: false, allow: [] } });

/** Reads the image a process GUID started with (from the `proc.start` seen earlier), or undefined. */
export type ImageOf = (pg: string) => string | undefined;

/** Compiled tuning filters of one tenant. */
export interface TuningMatcher {
  /** The id of the first filter the event matches, or undefined to keep it. */
  match(event: Record<string, unknown>, imageOf?: ImageOf): string | undefined;
}

interface CompiledFilter {
  id: string;
  kind: RegExp | undefined;
  image: RegExp | undefined;
  path: RegExp | undefined;
  keyPrefix: string | undefined;
}

/** Compiles filters once; undefined when there are none (the common case costs nothing per event). */
export function compileTuning(filters: readonly TuningFilter[]): TuningMatcher | undefined {
  if (filters.length === 0) return undefined;
  const compiled: CompiledFilter[] = filters.map((f) => ({
    id: f.id,
    kind: f.kind === undefined ? undefined : globToRegExp(f.kind),
    image: f.image === undefined ? undefined : globToRegExp(f.image),
    path: f.path === undefined ? undefined : globToRegExp(f.path),
    keyPrefix: f.keyPrefix?.toLowerCase(),
  }));
  return {
    match(event, imageOf) {
      const k = event.k;
      if (typeof k !== 'string') return undefined;
      for (const f of compiled) {
        if (f.kind !== undefined && !f.kind.test(k)) continue;
        if (f.path !== undefined && !(typeof event.path === 'string' && f.path.test(event.path))) continue;
        if (f.keyPrefix !== undefined && !(typeof event.key === 'string' && event.key.toLowerCase().startsWith(f.keyPrefix))) continue;
        if (f.image !== undefined) {
          const image = typeof event.image === 'string' ? event.image : typeof event.pg === 'string' ? imageOf?.(event.pg) : undefined;
          if (image === undefined || !f.image.test(image)) continue;
        }
        return f.id;
      }
      return undefined;
    },
  };
}

/** The first allow-list rule the device (a `usb.connect` event or an inventory entry: `vendorId`, `productId`, `serial`) matches, or undefined when it is not allowed. */
export function usbAllowedBy(rules: readonly UsbAllowRule[], device: Readonly<Record<string, unknown>>): UsbAllowRule | undefined {
  const field = (v: unknown): string => (typeof v === 'string' ? v : '');
  for (const r of rules) {
    if (!globToRegExp(r.vendorId).test(field(device.vendorId))) continue;
    if (r.productId !== undefined && !globToRegExp(r.productId).test(field(device.productId))) continue;
    if (r.serial !== undefined && !globToRegExp(r.serial).test(field(device.serial))) continue;
    return r;
  }
  return undefined;
}

/** Buckets of the stable device choice: a percentage stage of p % takes buckets below p × 100. */
export const ROLLOUT_BUCKETS = 10_000;

/**
 * A device's rollout bucket in [0, 10,000): the first 32 bits of SHA-256 of
 * its upper-case TMID, modulo 10,000. Stable across runs, servers and
 * rollouts, so a 10 % stage always names the same tenth of a fleet and a
 * later 25 % stage contains it.
 */
export function rolloutBucket(tmid: string): number {
  return createHash('sha256').update(tmid.toUpperCase()).digest().readUInt32BE(0) % ROLLOUT_BUCKETS;
}

/** True when the device falls in a percentage stage of `percent` (0-100, fractions allowed). */
export function inPercentStage(tmid: string, percent: number): boolean {
  return rolloutBucket(tmid) < Math.round(percent * (ROLLOUT_BUCKETS / 100));
}

/** The calendar day of an epoch-ms time in Asia/Tokyo (UTC+9, no DST), `YYYY-MM-DD`: the day tuning savings are counted under. */
export function tokyoDay(ms: number): string {
  return new Date(ms + 9 * 3_600_000).toISOString().slice(0, 10);
}
