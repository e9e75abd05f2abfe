/**
 * Decodes PowerShell's `-EncodedCommand` (base64 of UTF-16LE text) and the
 * base64 strings nested inside it (`FromBase64String('…')`, a second
 * `-enc`), so the report shows what actually ran. Bounded: at most a few
 * levels and a capped output, because this runs per report in the shard.
 */
import { splitCommandLine, baseName } from '../provenance/command-line.js';

const MAX_DECODED = 8 * 1024;
const MAX_DEPTH = 3;
const ENC_FLAG = /^[-/](e|ec|en|enc|enco|encod|encode|encoded|encodedc|encodedco|encodedcom|encodedcomm|encodedcomma|encodedcomman|encodedcommand)$/i;

function printable(s: string): boolean {
  if (s.length === 0) return false;
  let ok = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 9 || c === 10 || c === 13 || (c >= 32 && c !== 0xfffd)) ok++;
  }
  return ok / s.length > 0.95;
}

/** Base64 text decoded as UTF-16LE, else UTF-8; undefined when neither gives readable text. */
export function decodeBase64Text(b64: string): string | undefined {
  const clean = b64.replace(/\s+/g, '');
  if (clean.length < 8 || !/^[A-Za-z0-9+/]+={0,2}$/.test(clean)) return undefined;
  const bytes = Buffer.from(clean, 'base64');
  if (bytes.length === 0) return undefined;
  // UTF-16LE: ASCII text has a zero every second byte.
  let zeros = 0;
  for (let i = 1; i < bytes.length; i += 2) if (bytes[i] === 0) zeros++;
  const utf16 = zeros >= Math.floor(bytes.length / 2) * 0.6;
  const text = (utf16 ? bytes.subarray(0, bytes.length - (bytes.length % 2)).toString('utf16le') : bytes.toString('utf8')).replace(/^\ufeff/, '');
  return printable(text) ? text.slice(0, MAX_DECODED) : undefined;
}

/** The nested base64 strings a decoded script decodes itself, decoded (depth-bounded). */
function nested(text: string, depth: number, out: string[]): void {
  if (depth >= MAX_DEPTH) return;
  for (const m of text.matchAll(/(?:FromBase64String\s*\(\s*['"]|-e(?:nc(?:odedcommand)?)?\s+['"]?)([A-Za-z0-9+/]{16,}={0,2})/gi)) {
    const d = decodeBase64Text(m[1]!);
    if (d === undefined) continue;
    out.push(d);
    nested(d, depth + 1, out);
    if (out.length >= 4) return;
  }
}

/**
 * The text of a PowerShell command line's `-EncodedCommand` (any accepted
 * abbreviation), followed by any base64 it decodes in turn; undefined when
 * the command line carries none or it does not decode to text.
 */
export function decodeEncodedCommand(image: string, cmd: string): string[] | undefined {
  const host = baseName(image);
  if (host !== 'powershell.exe' && host !== 'pwsh.exe' && host !== 'powershell_ise.exe' && !/powershell|pwsh/i.test(cmd)) return undefined;
  if (!/\s[-/]e/i.test(cmd)) return undefined;
  const args = splitCommandLine(cmd);
  for (let i = 0; i < args.length - 1; i++) {
    if (!ENC_FLAG.test(args[i]!)) continue;
    const first = decodeBase64Text(args[i + 1]!);
    if (first === undefined) return undefined;
    const out = [first];
    nested(first, 1, out);
    return out;
  }
  return undefined;
}
