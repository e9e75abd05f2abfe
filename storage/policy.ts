/**
 * Tenant policy and the exception list (SPEC §4): read by the shards on each
 * detection, written by the CLI now and by the API later.
 */
import { randomBytes } from 'node:crypto';
import type { AlertRecord, ExceptionEntry, QuickReport, TenantPolicy, VerdictChange } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import type { HotStore } from './hot-store.js';

export const DEFAULT_TENANT_POLICY: TenantPolicy = { autoExceptWhite: false, tuningUntil: null, isolateOnBlack: false };

export function tenantPolicy(store: HotStore, supportId: string): TenantPolicy {
  return { ...DEFAULT_TENANT_POLICY, ...store.tenants.get(supportId)?.policy };
}

/** Changes some policy fields of a tenant; returns the new policy. */
export async function setTenantPolicy(store: HotStore, supportId: string, change: Partial<TenantPolicy>): Promise<TenantPolicy> {
  const policy = await store.tenants.transaction(() => {
    const tenant = store.tenants.get(supportId);
    if (tenant === undefined) return undefined;
    const next: TenantPolicy = { ...DEFAULT_TENANT_POLICY, ...tenant.policy, ...change };
    store.tenants.putSync(supportId, { ...tenant, policy: next });
    return next;
  });
  if (policy === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId });
  await store.flushed();
  return policy;
}

export function newExceptionId(): string {
  return `ex_${randomBytes(8).toString('hex')}`;
}

/**
 * Adds an exception entry; at least one of sha256, pathPattern, signer.
 * @throws KisekiError ERR_INVALID_INPUT, ERR_TENANT_NOT_FOUND
 */
export async function addException(
  store: HotStore,
  input: Omit<ExceptionEntry, 'id' | 'createdAt'> & { id?: string; createdAt: number },
): Promise<ExceptionEntry> {
  if (store.tenants.get(input.supportId) === undefined) throw new KisekiError('ERR_TENANT_NOT_FOUND', { supportId: input.supportId });
  if (input.sha256 === undefined && input.pathPattern === undefined && input.signer === undefined) {
    throw new KisekiError('ERR_INVALID_INPUT', { reason: 'an exception needs sha256, pathPattern or signer' });
  }
  if (input.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(input.sha256)) {
    throw new KisekiError('ERR_INVALID_INPUT', { field: 'sha256', rule: '64 hexadecimal characters' });
  }
  const entry: ExceptionEntry = { ...input, id: input.id ?? newExceptionId(), ...(input.sha256 === undefined ? {} : { sha256: input.sha256.toLowerCase() }) };
  await store.exceptions.put([entry.supportId, entry.id], entry);
  await store.flushed();
  return entry;
}

export function listExceptions(store: HotStore, supportId: string): ExceptionEntry[] {
  return [...store.exceptions.getRange({ start: [supportId], end: [supportId, '\uffff'] })].map((e) => e.value);
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** The first live entry that matches the file, or undefined. */
export function matchException(
  entries: readonly ExceptionEntry[],
  file: { sha256: string | undefined; path: string; signer: string | undefined },
  now: number,
): ExceptionEntry | undefined {
  for (const e of entries) {
    if (e.expiresAt !== undefined && e.expiresAt <= now) continue;
    if (e.sha256 !== undefined && (file.sha256 === undefined || e.sha256 !== file.sha256.toLowerCase())) continue;
    if (e.pathPattern !== undefined && !globToRegExp(e.pathPattern).test(file.path)) continue;
    if (e.signer !== undefined && (file.signer === undefined || e.signer.toLowerCase() !== file.signer.toLowerCase())) continue;
    return e;
  }
  return undefined;
}

export interface AlertView {
  alert: AlertRecord;
  /** Every revision of the quick report, oldest first. */
  revisions: QuickReport[];
  verdicts: VerdictChange[];
}

/** An alert with its report revisions and verdict history, or undefined. */
export function readAlert(store: HotStore, alertId: string): AlertView | undefined {
  const alert = store.alerts.get(alertId);
  if (alert === undefined) return undefined;
  const revisions = [...store.reports.getRange({ start: [alertId], end: [alertId, Infinity] })].map((e) => e.value);
  const verdicts = [...store.verdictHistory.getRange({ start: [alertId], end: [alertId, Infinity] })].map((e) => e.value);
  return { alert, revisions, verdicts };
}

/** A tenant's alerts, newest first. */
export function listAlerts(store: HotStore, supportId: string, limit = 100): AlertRecord[] {
  const out: AlertRecord[] = [];
  for (const key of store.tenantAlerts.getKeys({ start: [supportId, Infinity], end: [supportId], reverse: true, limit })) {
    const a = store.alerts.get(key[2]);
    if (a !== undefined) out.push(a);
  }
  return out;
}
