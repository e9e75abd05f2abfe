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
export { createThreatIntel } from './threat-intel.js';
export type { ThreatIntel, IntelKind } from './threat-intel.js';
export { DEFAULT_RULES } from './rules/default-rules.js';
export { compileRules, judge } from './rules/evaluate.js';
export type { RuleSet, RuleSpec, Condition, FieldTest } from './rules/rule-types.js';
export { renderReportText } from './report-text.js';
