/**
 * kiseki's own text form of BinXML values, close to what Windows' Event
 * Viewer shows: GUIDs `{UPPER-CASE}`, HEX32/HEX64 `0x` + lower-case hex
 * without padding, FILETIME ISO 8601 UTC with 100 ns digits, SYSTEMTIME ISO
 * with milliseconds, binary as upper-case hex, booleans `true`/`false`. The
 * evtx-dump JSON form (evtx-json.ts) differs only where that layout has typed
 * JSON values.
 */
import { filetimeToIso } from './evtx-reader.js';
import { EVTX_ARRAY, VT, type EvtxScalar, type EvtxValue, type SystemTime } from './evtx-types.js';

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** A SYSTEMTIME as ISO 8601 UTC with milliseconds (fields as stored, not validated). */
export function systemTimeToIso(st: SystemTime): string {
  return `${pad(st.year, 4)}-${pad(st.month, 2)}-${pad(st.day, 2)}T${pad(st.hour, 2)}:${pad(st.minute, 2)}:${pad(st.second, 2)}.${pad(st.millisecond, 3)}Z`;
}

/** One scalar of the given (non-array) BinXML type as text. */
export function formatScalar(type: number, v: EvtxScalar): string {
  switch (type) {
    case VT.BOOL:
      return v === true ? 'true' : 'false';
    case VT.BINARY:
      return Buffer.from(v as Uint8Array).toString('hex').toUpperCase();
    case VT.GUID:
      return `{${String(v).toUpperCase()}}`;
    case VT.FILETIME:
      return filetimeToIso(v as bigint);
    case VT.SYSTEMTIME:
      return systemTimeToIso(v as SystemTime);
    case VT.HEX32:
    case VT.HEX64:
      return `0x${(v as number | bigint).toString(16)}`;
    default:
      return String(v);
  }
}

/**
 * A value as text: null is empty, arrays are comma-separated, an embedded
 * BinXML document is left to the caller (empty here).
 */
export function formatValue(v: EvtxValue): string {
  if (v.value === null || v.type === VT.BINXML) return '';
  if ((v.type & EVTX_ARRAY) !== 0) return (v.value as EvtxScalar[]).map((x) => formatScalar(v.type & ~EVTX_ARRAY, x)).join(',');
  return formatScalar(v.type, v.value as EvtxScalar);
}
