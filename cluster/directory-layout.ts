/**
 * The layout of the `kiseki-directory` bucket (docs/CLUSTER.md, "Stream and
 * buckets"): its keys and the parsers of its values, in one place for the
 * modules that read or write it (directory.ts, tenant-sync.ts,
 * device-state.ts, settings-sync.ts). Support IDs and TMIDs are base64url-encoded in keys: NATS
 * KV keys allow only `[-/_=.A-Za-z0-9]`. A value of another shape parses as
 * undefined (treated as absent).
 */
import type { ExceptionEntry, SigmaTenantSettings } from '../core/contracts.js';
import type { DeviceRecord, FleetPolicyRecord, LivenessSettings, TenantRecord, ThresholdRuleSet } from '../storage/index.js';

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

/**
 * `except.<support ID>.<entry id>` → one entry of the tenant's exception list (ExceptionEntry JSON), or its
 * removal (`{supportId, id, removedAt, removedBy}`). One key per entry: adds on two nodes never touch the same key.
 */
export function exceptionKey(supportId: string, id: string): string {
  return `except.${b64(supportId)}.${b64(id)}`;
}

/** `sigma.<support ID>` → the tenant's Sigma settings (`{supportId, enabled, disabledRules, updatedAt}`). */
export function sigmaKey(supportId: string): string {
  return `sigma.${b64(supportId)}`;
}

/** `analytics.<support ID>` → the tenant's threshold rules (ThresholdRuleSet JSON). */
export function analyticsKey(supportId: string): string {
  return `analytics.${b64(supportId)}`;
}

/** `liveness.<support ID>` → the tenant's liveness settings (LivenessSettings JSON). */
export function livenessKey(supportId: string): string {
  return `liveness.${b64(supportId)}`;
}

export type DirectoryKeyKind = 'device' | 'tenant' | 'enroll' | 'fleet' | 'state' | 'except' | 'sigma' | 'analytics' | 'liveness';

/**
 * The kind of a directory key and the support ID or TMID it names (`item`: an exception key's entry id);
 * undefined for a key of another shape.
 */
export function parseDirectoryKey(key: string): { kind: DirectoryKeyKind; id: string; item?: string } | undefined {
  const dot = key.indexOf('.');
  if (dot < 0) return undefined;
  const kind = key.slice(0, dot);
  const rest = key.slice(dot + 1);
  const decode = (s: string): string => Buffer.from(s, 'base64url').toString();
  switch (kind) {
    case 'enroll':
      return { kind, id: rest };
    case 'device':
    case 'tenant':
    case 'fleet':
    case 'state':
    case 'sigma':
    case 'analytics':
    case 'liveness':
      return { kind, id: decode(rest) };
    case 'except': {
      const [supportId, item, extra] = rest.split('.');
      if (supportId === undefined || item === undefined || extra !== undefined) return undefined;
      return { kind, id: decode(supportId), item: decode(item) };
    }
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

/** An exception key's value once its entry was removed (kept, so that a late copy of the add stays out). */
export interface ExceptionRemoval {
  supportId: string;
  id: string;
  /** ms; at least one past the entry's `createdAt`. */
  removedAt: number;
  removedBy: string;
}

/** What an `except.<support ID>.<id>` key holds: the entry, or its removal. */
export type SharedException = ExceptionEntry | ExceptionRemoval;

export function isExceptionRemoval(v: SharedException): v is ExceptionRemoval {
  return 'removedAt' in v;
}

/** The stamp newest-wins compares for an exception key: the entry's `createdAt`, or the removal's time. */
export function exceptionStamp(v: SharedException): number {
  return isExceptionRemoval(v) ? v.removedAt : v.createdAt;
}

/** An `except.<support ID>.<id>` value: that entry or its removal, or undefined for any other shape. */
export function parseException(json: string, supportId: string, id: string): SharedException | undefined {
  return parseRecord<SharedException>(json, (v) => {
    if (v.supportId !== supportId || v.id !== id) return false;
    if ('removedAt' in v) return typeof v.removedAt === 'number' && typeof v.removedBy === 'string';
    const e = v as Partial<ExceptionEntry>;
    return typeof e.createdAt === 'number' && typeof e.reason === 'string' && typeof e.createdBy === 'string' && (typeof e.sha256 === 'string' || typeof e.pathPattern === 'string' || typeof e.signer === 'string');
  });
}

/** A `sigma.<support ID>` value: the tenant's Sigma settings with its support ID and stamp. */
export interface SharedSigmaSettings extends SigmaTenantSettings {
  supportId: string;
  updatedAt: number;
}

/** A `sigma.<support ID>` value (with its stamp), or undefined for any other shape. */
export function parseSigmaSettings(json: string, supportId: string): SharedSigmaSettings | undefined {
  return parseRecord<SharedSigmaSettings>(
    json,
    (v) => v.supportId === supportId && typeof v.enabled === 'boolean' && Array.isArray(v.disabledRules) && v.disabledRules.every((x) => typeof x === 'string') && typeof v.updatedAt === 'number',
  );
}

/** An `analytics.<support ID>` value, or undefined for any other shape. */
export function parseThresholdRules(json: string, supportId: string): ThresholdRuleSet | undefined {
  return parseRecord<ThresholdRuleSet>(json, (v) => v.supportId === supportId && Array.isArray(v.rules) && typeof v.updatedAt === 'number' && typeof v.updatedBy === 'string');
}

/** A `liveness.<support ID>` value, or undefined for any other shape. */
export function parseLivenessSettings(json: string, supportId: string): LivenessSettings | undefined {
  return parseRecord<LivenessSettings>(json, (v) => v.supportId === supportId && Array.isArray(v.windows) && typeof v.updatedAt === 'number' && typeof v.updatedBy === 'string');
}
