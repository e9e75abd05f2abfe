/** Public surface of storage/: the LMDB hot store, tenant and device registry, read models. */
export { openHotStore, addSeqRange, seqGaps } from './hot-store.js';
export type { HotStore, HotStoreOptions, TenantRecord, DeviceRecord, TrailState, BatchRecord, BatchToCommit } from './hot-store.js';
export { createTenant, tenantForEnrollKey, enrollDevice, authenticateDevice, sha256Hex, newTmid } from './registry.js';
export type { DeviceFacts } from './registry.js';
export { inspectStore } from './inspect.js';
export type { InspectReport } from './inspect.js';
export { DEFAULT_TENANT_POLICY, tenantPolicy, setTenantPolicy, addException, listExceptions, matchException, readAlert, listAlerts, newExceptionId } from './policy.js';
export type { AlertView } from './policy.js';
export type { DeviceIsolation, AlertComment, AnalystVerdict } from './hot-store.js';
export {
  createUser,
  verifyLogin,
  setPassword,
  createSession,
  resolveSession,
  revokeSession,
  appendAudit,
  checkPasswordRule,
  verifyPassword,
  MAX_FAILED_LOGINS,
  LOCKOUT_MS,
} from './identity.js';
export type { Role, UserRecord, SessionRecord, AuditRecord, LoginResult } from './identity.js';
export { queueCommand, readCommand, deviceCommands, updateCommand, pendingCommands, newCommandId } from './commands.js';
export type { CommandRecord, CommandKind, CommandState } from './commands.js';
export { lsnReceivedAtOrAfter, lsnSafeToDrop, dropRawBatches } from './retention.js';
export type { DropResult } from './retention.js';
