/**
 * Public surface of storage/: the hot store with its repositories, the
 * record types they hand out, and the pure helpers around them. The raw
 * tables (tables.ts) are deliberately not exported.
 */
export { openHotStore } from './hot-store.js';
export { ackLogDir } from './ack-log.js';
export type { HotStore, HotStoreOptions } from './hot-store.js';
export type {
  AlertComment,
  AnalystVerdict,
  AuditRecord,
  BatchRecord,
  BatchToCommit,
  CommandKind,
  CommandRecord,
  CommandState,
  CustomerAnswer,
  DailyCounters,
  DailyDelta,
  DedupEntry,
  DeviceLiveness,
  LivenessSettings,
  MaintenanceWindow,
  OpsAlert,
  OpsAlertKind,
  ThresholdRule,
  ThresholdRuleSet,
  DeviceFacts,
  DeviceIsolation,
  DeviceRecord,
  EffectiveAlert,
  AgentPackage,
  FleetAlert,
  FleetPolicyRecord,
  RolloutRecord,
  RolloutStage,
  RolloutState,
  RolloutTarget,
  TuningSavings,
  QuarantineReason,
  QuarantineRecord,
  NotifyEventKind,
  NotifyFeedEvent,
  NotifyRecipient,
  NotifySettings,
  OutboxEntry,
  PeriodicReportRecord,
  Role,
  SessionRecord,
  TenantRecord,
  TrailState,
  UserRecord,
  VerdictHistoryEntry,
} from './records.js';
export { DEFAULT_TENANT_POLICY, tenantChangedAt, withTenantPolicy } from './tenants.js';
export type { TenantRepository } from './tenants.js';
export { newTmid } from './devices.js';
export type { DeviceRepository } from './devices.js';
export { dedupApplies, dedupFileKey } from './alerts.js';
export type { AlertRepository, AlertView, AlertCursor, AnalysisRecord } from './alerts.js';
export { DEFAULT_SIGMA_SETTINGS } from './detections.js';
export type { DetectionRepository, DetectionCursor, SigmaDedupEntry } from './detections.js';
export type { SigmaHuntRepository, SigmaHuntRecord, SigmaHuntHit, SigmaHuntStatus } from './sigma-hunts.js';
export { newCommandId, commandStateRank } from './commands.js';
export type { CommandRepository, CommandInput, CommandOutcome } from './commands.js';
export { autoExceptionId, matchException, newExceptionId } from './exceptions.js';
export type { ExceptionInput, ExceptionRepository } from './exceptions.js';
export { checkPasswordRule, verifyPassword, MAX_FAILED_LOGINS, LOCKOUT_MS } from './identity.js';
export type { IdentityRepository, LoginResult, AuditCursor } from './identity.js';
export { addSeqRange, seqGaps } from './log.js';
export type { LogRepository, DropResult } from './log.js';
export type { ShardStateRepository } from './shard-state.js';
export type { QuarantineRepository } from './quarantine.js';
export type { NotifyRepository } from './notify.js';
export type { PeriodicReportRepository } from './periodic-reports.js';
export type { AnswerRepository } from './answers.js';
export type { NetlogRepository, StoredNetlog, NetlogCursor, NetlogQuery, NetlogFailureCount } from './netlog.js';
// Network intel (issue 17, part B).
export type { NetConnRepository } from './net-conns.js';
export type { IntelAlertRepository, IntelAlertCursor, IntelAlertOutcome } from './intel-alerts.js';
export type { NetConnEntry, SiemFormat, SiemTarget } from './records.js';
export { sha256Hex } from './secrets.js';
export { inspectStore } from './inspect.js';
export { lockDataDir, DATA_DIR_LOCK_FILE } from './data-dir-lock.js';
export type { DataDirLock, DataDirLockOwner } from './data-dir-lock.js';
export { verifyDataDir, checkLmdbFile, batchChecksum, batchIntact } from './verify.js';
export type { VerifyOptions, VerifyReport } from './verify.js';
export type { InspectReport } from './inspect.js';
export type { OpsAlertRepository, OpsAlertFilter } from './ops-alerts.js';
export type { LivenessRepository, LivenessDecisions } from './liveness.js';
export { DESTINATIONS_CAP, KNOWN_CAP } from './analytics.js';
export type { AnalyticsRepository, AnalyticsMetric, AnalyticsSummary } from './analytics.js';
export { nextFleetPolicy } from './fleet.js';
export type { FleetRepository, FleetPolicyChange, TuningSavingsDay } from './fleet.js';
export { newRolloutId, rolloutSelects } from './rollouts.js';
export type { RolloutRepository, RolloutInput, RolloutMove, RolloutStatus } from './rollouts.js';
// prevalence across the tenant's fleet (issue 13)
export { mergePrevalence, PREVALENCE_DEVICE_CAP } from './prevalence.js';
export type { PrevalenceRepository } from './prevalence.js';
export type { PrevalenceRecord, PrevalenceSighting } from './records.js';
