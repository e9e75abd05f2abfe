/** Public surface of engine/: shard pool and workers, virtual-shard mapping. */
export { createShardPool, shardPoolOptionsFrom } from './shard-pool.js';
export type { ShardPool, ShardPoolOptions, ShardPoolStats } from './shard-pool.js';
export { ShardCore, INVALID_KIND } from './shard-core.js';
export type { ShardStats } from './shard-core.js';
export { VIRTUAL_SHARDS, virtualShardOf, workerOf } from '../core/vshard.js';
export { Correlator, alertIdFor, alertIdForDetection, DEDUP_WINDOW_MS } from './correlator.js';
export type { CorrelatorOptions } from './correlator.js';
export { DeviceState, DEFAULT_DEVICE_LIMITS } from './device-state.js';
export { buildQuickReport, SECTION_TITLES, LOOK_BACK_MS } from './report-builder.js';
export * from './intel/index.js';
export { DEFAULT_RULES } from './rules/default-rules.js';
export { compileRules, judge } from './rules/evaluate.js';
export type { RuleSet, RuleSpec, Condition, FieldTest } from './rules/rule-types.js';
export { renderReportText } from './report-text.js';
// Sigma hunt jobs (the API's /sigma/hunts).
export { startSigmaHunt, compileRulesText, MAX_HUNT_HITS } from './sigma-hunt-job.js';
export type { HuntRuleChoice, StartSigmaHuntOptions } from './sigma-hunt-job.js';
export type { SigmaRuleSourceOptions } from './sigma-rules.js';
// liveness and streaming analytics (issue 16)
export { createLivenessMonitor, effectiveLivenessSettings, inMaintenance, parseClockTime, silenceStart } from './liveness.js';
export type { LivenessMonitor, LivenessMonitorOptions, LivenessReport, LivenessDefaults, EffectiveLivenessSettings } from './liveness.js';
export { deviceStatus, DEVICE_STATUSES } from './device-status.js';
export type { DeviceStatus } from './device-status.js';
export { StreamingAnalytics, DEFAULT_THRESHOLD_RULES, jstDay, sweepAnalytics } from './analytics.js';
export type { AnalyticsUnit, StreamingAnalyticsOptions } from './analytics.js';
