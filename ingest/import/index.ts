/** Public surface of ingest/import/: `kiseki import sysmon` and `kiseki detect`, and the pieces they are made of. */
export { runImportCommand, IMPORT_USAGE } from './import-command.js';
export type { ImportSummary } from './import-command.js';
export { runDetectCommand, DETECT_USAGE } from './detect-command.js';
export type { CommandIo } from './command-support.js';
export { mapRecord, normalizeGuid, parseUtcTime } from './sysmon-mapper.js';
export type { ImportedEvent, MapOutcome } from './sysmon-mapper.js';
export { buildTrails } from './import-trail.js';
export type { HostTrail, InputEvent } from './import-trail.js';
export { readRecords } from './sysmon-reader.js';
export { sendTrail, DEFAULT_AGENT_URL } from './import-client.js';
export { readEvtxFile, readEvtxBuffer, recordJson, recordXml } from './evtx/index.js';
export type { EvtxIssue, EvtxItem, EvtxRecord } from './evtx/index.js';
