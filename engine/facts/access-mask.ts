/**
 * Decodes a process access mask (Sysmon 10 `GrantedAccess`, Security 4656 /
 * 4663 `AccessMask`) into the rights' names, so a report says "PROCESS_VM_READ,
 * PROCESS_QUERY_INFORMATION" instead of 0x1410, and tells which grants let
 * the opener read or change the target's memory (what credential dumpers of
 * LSASS need).
 */

/** Process-specific and standard access rights, by bit (winnt.h). */
const PROCESS_RIGHTS: [number, string][] = [
  [0x0001, 'PROCESS_TERMINATE'],
  [0x0002, 'PROCESS_CREATE_THREAD'],
  [0x0004, 'PROCESS_SET_SESSIONID'],
  [0x0008, 'PROCESS_VM_OPERATION'],
  [0x0010, 'PROCESS_VM_READ'],
  [0x0020, 'PROCESS_VM_WRITE'],
  [0x0040, 'PROCESS_DUP_HANDLE'],
  [0x0080, 'PROCESS_CREATE_PROCESS'],
  [0x0100, 'PROCESS_SET_QUOTA'],
  [0x0200, 'PROCESS_SET_INFORMATION'],
  [0x0400, 'PROCESS_QUERY_INFORMATION'],
  [0x0800, 'PROCESS_SUSPEND_RESUME'],
  [0x1000, 'PROCESS_QUERY_LIMITED_INFORMATION'],
  [0x2000, 'PROCESS_SET_LIMITED_INFORMATION'],
  [0x10000, 'DELETE'],
  [0x20000, 'READ_CONTROL'],
  [0x40000, 'WRITE_DAC'],
  [0x80000, 'WRITE_OWNER'],
  [0x100000, 'SYNCHRONIZE'],
  [0x1000000, 'ACCESS_SYSTEM_SECURITY'],
  [0x10000000, 'GENERIC_ALL'],
  [0x20000000, 'GENERIC_EXECUTE'],
  [0x40000000, 'GENERIC_WRITE'],
  [0x80000000, 'GENERIC_READ'],
];

/** PROCESS_ALL_ACCESS on Vista and later. */
const ALL_ACCESS = 0x1fffff;

export interface DecodedAccess {
  mask: number;
  rights: string[];
  /** Every process right (PROCESS_ALL_ACCESS or GENERIC_ALL). */
  full: boolean;
  /** Lets the opener read the target's memory (VM_READ, full or GENERIC_READ). */
  readsMemory: boolean;
  /** Lets the opener write memory or start threads in the target (injection). */
  writesMemory: boolean;
}

/** Parses `0x1410`, `0x001F3FFF`, `5136` (decimal) or a number; undefined when it is none of these. */
export function parseAccessMask(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v >>> 0 : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  if (/^0x[0-9a-f]{1,8}$/i.test(s)) return parseInt(s.slice(2), 16) >>> 0;
  if (/^\d{1,10}$/.test(s)) return Number(s) >>> 0;
  return undefined;
}

/** The rights of a process access mask, with what they allow. */
export function decodeProcessAccess(mask: number): DecodedAccess {
  const rights: string[] = [];
  const full = (mask & ALL_ACCESS) === ALL_ACCESS || (mask & 0x10000000) !== 0;
  if ((mask & ALL_ACCESS) === ALL_ACCESS) rights.push('PROCESS_ALL_ACCESS');
  for (const [bit, name] of PROCESS_RIGHTS) {
    if ((mask & ALL_ACCESS) === ALL_ACCESS && bit <= 0x100000) continue;
    if ((mask & bit) !== 0) rights.push(name);
  }
  return {
    mask,
    rights,
    full,
    readsMemory: full || (mask & 0x0010) !== 0 || (mask & 0x80000000) !== 0,
    writesMemory: full || (mask & 0x0020) !== 0 || (mask & 0x0002) !== 0 || (mask & 0x40000000) !== 0,
  };
}

/** `0x1410` → "PROCESS_VM_READ, PROCESS_QUERY_INFORMATION, PROCESS_QUERY_LIMITED_INFORMATION". */
export function describeAccess(v: unknown): string | undefined {
  const mask = parseAccessMask(v);
  return mask === undefined ? undefined : decodeProcessAccess(mask).rights.join(', ');
}
