/**
 * The layout of the `kiseki-directory` bucket (docs/CLUSTER.md, "Stream and
 * buckets"): its keys and the parsers of its values, in one place for the
 * modules that read or write it (directory.ts, tenant-sync.ts,
 * device-state.ts). Support IDs and TMIDs are base64url-encoded in keys: NATS
 * KV keys allow only `[-/_=.A-Za-z0-9]`. A value of another shape parses as
 * undefined (treated as absent).
 */
import type { DeviceRecord, FleetPolicyRecord, TenantRecord } from '../storage/index.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64url');

/** `device.<TMID>` → DeviceRecord JSON with its token hash (written at enrollment). */
export function deviceKey(tmid: string): string {
  return `device.${b64(tmid)}`;
}

/** `tenant.<support ID>` → TenantRecord JSON with its policy. */
export function tenantKey(supportId: string): string {
  return `tenant.${b64(supportId)}`;
}

/** `enroll.<SHA-256 hex of the enrollment key>` → support ID. */
export function enrollKeyKey(enrollKeyHash: string): string {
  return `enroll.${enrollKeyHash}`;
}

/** `fleet.<support ID>` → FleetPolicyRecord JSON (what agents get in `welcome.policy.fleet`). */
export function fleetKey(supportId: string): string {
  return `fleet.${b64(supportId)}`;
}

/** `state.<TMID>` → the device's live connection state and hello facts, put by the ingest node holding its socket. */
export function stateKey(tmid: string): string {
  return `state.${b64(tmid)}`;
}

/** The kind of a directory key and the support ID or TMID it names; undefined for a key of another shape. */
export function parseDirectoryKey(key: string): { kind: 'device' | 'tenant' | 'enroll' | 'fleet' | 'state'; id: string } | undefined {
  const dot = key.indexOf('.');
  if (dot < 0) return undefined;
  const kind = key.slice(0, dot);
  const rest = key.slice(dot + 1);
  switch (kind) {
    case 'enroll':
      return { kind, id: rest };
    case 'device':
    case 'tenant':
    case 'fleet':
    case 'state':
      return { kind, id: Buffer.from(rest, 'base64url').toString() };
    default:
      return undefined;
  }
}

/** Parses a bucket value; a value of another shape is treated as absent. */
function parseRecord<T>(json: string, valid: (v: Partial<T>) => boolean): T | undefined {
  try {
    const v = JSON.parse(json) as Partial<T>;
    return typeof v === 'object' && v !== null && valid(v) ? (v as T) : undefined;
  } catch {
    return undefined;
  }
}

/** A `tenant.<support ID>` value: the tenant record of that support ID, or undefined for any other shape. */
export function parseTenant(json: string, supportId: string): TenantRecord | undefined {
  return parseRecord<TenantRecord>(json, (v) => v.supportId === supportId && typeof v.enrollKeyHash === 'string' && typeof v.createdAt === 'number');
}

/** A `device.<TMID>` value: the device record of that TMID (with its token hash), or undefined for any other shape. */
export function parseDevice(json: string, tmid: string): DeviceRecord | undefined {
  return parseRecord<DeviceRecord>(json, (v) => v.tmid === tmid && typeof v.tokenHash === 'string' && typeof v.supportId === 'string');
}

/** A `fleet.<support ID>` value: that tenant's fleet policy, or undefined for any other shape. */
export function parseFleetPolicy(json: string, supportId: string): FleetPolicyRecord | undefined {
  return parseRecord<FleetPolicyRecord>(
    json,
    (v) => v.supportId === supportId && typeof v.version === 'number' && typeof v.mode === 'string' && Array.isArray(v.tuning) && typeof v.usb === 'object' && v.usb !== null && typeof v.updatedAt === 'number',
  );
}
