/** Public surface of ingest/: the agent WebSocket endpoint and the group committer behind it. */
export { startAgentServer } from './agent-server.js';
export type { AgentDirectory, AgentServer, AgentServerOptions, DeviceConnectionChange } from './agent-server.js';
export { createBatchCommitter } from './batch-committer.js';
export type { BatchCommitter, BatchSubmission, CommitCallback, CommitOutcome, CommittedBatchSink, StorageFailure } from './batch-committer.js';
export { scanFrame, isWellFormed } from './frame-scanner.js';
export type { FrameEnvelope, ScanResult } from './frame-scanner.js';
