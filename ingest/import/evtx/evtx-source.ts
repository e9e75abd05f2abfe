/**
 * What the import needs from the .evtx reader: the command's file list with
 * folders expanded to the .evtx files inside them (a copied `winevt\Logs`),
 * and each file's records in the evtx-dump JSON layout the Sysmon mapper
 * reads, with the reader's issues as bad items (reason `evtx_<reason>`, line
 * = the record number, or 0 for a file- or chunk-level issue).
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { KisekiError } from '../../../core/errors.js';
import { recordJson } from './evtx-json.js';
import { readEvtxFile } from './evtx-reader.js';
import type { EvtxIssueReason } from './evtx-types.js';

/** Reason of an .evtx issue as the import summary lists it. */
export type EvtxBadItemReason = `evtx_${EvtxIssueReason}`;

export type EvtxReadItem =
  | { ok: true; file: string; line: number; record: Record<string, unknown> }
  | { ok: false; file: string; line: number; reason: EvtxBadItemReason; detail?: string };

/** Files found in one folder tree at most (a `winevt\Logs` holds a few hundred). */
const MAX_FOLDER_FILES = 100_000;

async function walk(dir: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const p = join(dir, e.name);
    // Symbolic links are not followed: a link cycle must not hang the import.
    if (e.isDirectory()) await walk(p, out);
    else if (e.isFile() && /\.evtx$/i.test(e.name)) out.push(p);
    if (out.length > MAX_FOLDER_FILES) throw new KisekiError('ERR_INPUT_UNREADABLE', { file: dir, reason: `more than ${MAX_FOLDER_FILES} .evtx files under ${dir}` });
  }
}

/**
 * The command's inputs with every folder replaced by the .evtx files under it
 * (recursively, sorted by path); files are kept as given, whatever their type.
 * @throws KisekiError ERR_INPUT_UNREADABLE when a folder holds no .evtx file or cannot be listed
 */
export async function expandInputs(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch {
      // A missing path is reported by the reader with its own message.
    }
    if (!isDir) {
      out.push(p);
      continue;
    }
    const found: string[] = [];
    await walk(p, found);
    if (found.length === 0) throw new KisekiError('ERR_INPUT_UNREADABLE', { file: p, reason: `no .evtx files in the folder ${p}` });
    out.push(...found);
  }
  return out;
}

/** Streams an .evtx file's records as evtx-dump JSON objects, and its issues as bad items. */
export async function* evtxReadItems(path: string): AsyncGenerator<EvtxReadItem> {
  for await (const item of readEvtxFile(path)) {
    if (item.kind === 'record') {
      yield { ok: true, file: path, line: item.record.recordId, record: recordJson(item.record) };
    } else {
      const { reason, recordId, detail } = item.issue;
      yield { ok: false, file: path, line: recordId ?? 0, reason: `evtx_${reason}`, ...(detail === undefined ? {} : { detail }) };
    }
  }
}
