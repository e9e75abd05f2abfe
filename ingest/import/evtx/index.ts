/** Public surface of ingest/import/evtx/: the .evtx reader, its renderings, and what the import uses. */
export { readEvtxFile, readEvtxBuffer, readChunk, filetimeToIso, isEvtxHeader, EVTX_CHUNK_BYTES, EVTX_HEADER_BYTES } from './evtx-reader.js';
export { renderXml, recordXml, escapeXml } from './evtx-xml.js';
export { recordJson, nodesJson, valueJson } from './evtx-json.js';
export type { JsonValue } from './evtx-json.js';
export { formatValue, formatScalar, systemTimeToIso } from './evtx-values.js';
export { expandInputs, evtxReadItems } from './evtx-source.js';
export type { EvtxBadItemReason, EvtxReadItem } from './evtx-source.js';
export { VT, EVTX_ARRAY } from './evtx-types.js';
export type { EvtxAttribute, EvtxCData, EvtxCharRef, EvtxElement, EvtxEntityRef, EvtxIssue, EvtxIssueReason, EvtxItem, EvtxNode, EvtxPi, EvtxRecord, EvtxScalar, EvtxValue, SystemTime } from './evtx-types.js';
