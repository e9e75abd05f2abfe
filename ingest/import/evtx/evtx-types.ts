/**
 * The shapes the .evtx reader yields: a record is its header fields plus the
 * BinXML document expanded into a small tree (elements, attributes and typed
 * values, templates already instantiated). Values keep their BinXML type so
 * that each renderer (XML, evtx-dump JSON, the reference comparison) can
 * format them its own way without re-reading the file.
 */

/** BinXML value types (MS-EVEN6 2.2.10); an array is `EVTX_ARRAY | base type`. */
export const VT = {
  NULL: 0x00,
  WSTRING: 0x01,
  ANSI: 0x02,
  INT8: 0x03,
  UINT8: 0x04,
  INT16: 0x05,
  UINT16: 0x06,
  INT32: 0x07,
  UINT32: 0x08,
  INT64: 0x09,
  UINT64: 0x0a,
  FLOAT: 0x0b,
  DOUBLE: 0x0c,
  BOOL: 0x0d,
  BINARY: 0x0e,
  GUID: 0x0f,
  SIZE_T: 0x10,
  FILETIME: 0x11,
  SYSTEMTIME: 0x12,
  SID: 0x13,
  HEX32: 0x14,
  HEX64: 0x15,
  EVT_HANDLE: 0x20,
  BINXML: 0x21,
  EVT_XML: 0x23,
} as const;

/** Flag bit of an array value type (0x81 = array of UTF-16 strings). */
export const EVTX_ARRAY = 0x80;

/** SYSTEMTIME fields as stored (month 1-12, dayOfWeek 0-6). */
export interface SystemTime {
  year: number;
  month: number;
  dayOfWeek: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

/**
 * One decoded scalar. Strings for WSTRING/ANSI/GUID (lower-case, no braces)/SID,
 * numbers for integers up to 32 bits, floats and HEX32, bigint for 64-bit
 * integers, HEX64, SIZE_T and FILETIME (100 ns ticks since 1601), boolean for
 * BOOL, bytes for BINARY, {@link SystemTime} for SYSTEMTIME.
 */
export type EvtxScalar = string | number | bigint | boolean | Uint8Array | SystemTime;

/** A typed value: text of a value token, or a substitution filled in from the record. */
export interface EvtxValue {
  kind: 'value';
  /** BinXML value type ({@link VT}, with {@link EVTX_ARRAY} for arrays). */
  type: number;
  /** null for NULL; an array for array types; the embedded fragment for BINXML. */
  value: EvtxScalar | EvtxScalar[] | EvtxNode[] | null;
  /** True when it came from an optional substitution (omitted by renderers when null). */
  optional?: boolean;
}

export interface EvtxElement {
  kind: 'element';
  name: string;
  attributes: EvtxAttribute[];
  children: EvtxNode[];
}

export interface EvtxAttribute {
  name: string;
  /** Usually one value; character and entity references may add parts. */
  value: EvtxNode[];
}

export interface EvtxCData {
  kind: 'cdata';
  text: string;
}

export interface EvtxCharRef {
  kind: 'charref';
  code: number;
}

export interface EvtxEntityRef {
  kind: 'entityref';
  name: string;
}

export interface EvtxPi {
  kind: 'pi';
  target: string;
  data: string;
}

export type EvtxNode = EvtxElement | EvtxValue | EvtxCData | EvtxCharRef | EvtxEntityRef | EvtxPi;

export interface EvtxRecord {
  /** The record number (EventRecordID). */
  recordId: number;
  /** Write time as FILETIME ticks (100 ns since 1601-01-01 UTC). */
  filetime: bigint;
  /** Write time, ISO 8601 UTC with 100 ns precision (`2019-03-19T23:34:25.6345540Z`). */
  timestamp: string;
  /** 0-based chunk number inside the file. */
  chunk: number;
  /** Byte offset of the record in the file. */
  offset: number;
  /**
   * The document's top-level nodes (normally one `Event` element). Read-only:
   * template parts without substitutions are shared by the records of a chunk.
   */
  nodes: EvtxNode[];
}

/** Why part of a file was not read, or read with a doubt. */
export type EvtxIssueReason =
  | 'read_error'
  | 'not_evtx'
  | 'truncated_file'
  | 'file_header_crc_mismatch'
  | 'unsupported_version'
  | 'dirty_file'
  | 'bad_chunk_magic'
  | 'truncated_chunk'
  | 'chunk_header_crc_mismatch'
  | 'chunk_data_crc_mismatch'
  | 'bad_record'
  | 'binxml_error';

export interface EvtxIssue {
  reason: EvtxIssueReason;
  /** 0-based chunk number, when the issue is inside a chunk. */
  chunk?: number;
  /** Byte offset in the file where the problem was found. */
  offset?: number;
  /** The record number, when the record header was readable. */
  recordId?: number;
  /** What exactly was wrong (e.g. `unknown token 0x1f`); never record content. */
  detail?: string;
}

/** What the reader yields, in file order. */
export type EvtxItem = { kind: 'record'; record: EvtxRecord } | { kind: 'issue'; issue: EvtxIssue };
