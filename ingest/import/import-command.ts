/**
 * `kiseki import sysmon --tenant S [--computer NAME] [--url U] FILE...`:
 * reads exported Sysmon, Security and Defender records (JSON lines, plain,
 * gzipped or zipped), maps them to trail events, gives each host a device of
 * the tenant (enrolled on first sight), and sends each host's trail to the
 * running server over the agent protocol, in time order from the device's
 * next seq. Prints a JSON summary on stdout. docs/IMPORT.md is the user guide.
 */
import { buildTrails, type InputEvent } from './import-trail.js';
import { DEFAULT_AGENT_URL, probeServer, sendTrail } from './import-client.js';
import { isKisekiError, KisekiError } from '../../core/errors.js';
import { agentUrl, commandError, EXIT_OK, factsFor, flag, parseFlags, reportFailure, requireFlag, requireTenant, resolveDevice, usageError, withImportStore, type CommandIo } from './command-support.js';
import { mapRecord } from './sysmon-mapper.js';
import { readRecords } from './sysmon-reader.js';
import { storedRids } from './stored-trail.js';
import { expandInputs } from './evtx/evtx-source.js';

export const IMPORT_USAGE = `Usage:
  kiseki import sysmon --tenant SUPPORT_ID [--computer NAME] [--url ws://127.0.0.1:9100/agent/v1] [--data DIR] FILE|FOLDER...

Imports Sysmon (and Security 4624/4625/4634, Defender 1116/1117) events exported as
JSON lines — flat (NXLog, OTRF Security-Datasets), Winlogbeat or evtx-dump layout;
plain, .gz or .zip — or as Windows .evtx files (a FOLDER stands for the .evtx files
under it, e.g. a copied winevt\Logs) into the running server as each host's device trail.
  --tenant     support ID of the tenant the hosts belong to (required)
  --computer   treat every record as coming from this host (overrides the records' computer names)
  --url        the server's agent endpoint (default ${DEFAULT_AGENT_URL})
The server must be running (\`kiseki start\`). Re-importing a file adds nothing.
`;

/** Bad lines and skipped records listed in the summary (the rest are only counted). */
const MAX_LISTED = 20;

interface Listed {
  file: string;
  line: number;
  reason: string;
  eventId?: number;
  /** What exactly was wrong, for .evtx issues (`unknown token 0x1f`). */
  detail?: string;
}

interface HostSummary {
  computer: string;
  tmid: string;
  enrolled: boolean;
  note?: string;
  events: number;
  alreadyImported: number;
  duplicates: number;
  firstSeq: number | null;
  lastSeq: number | null;
  batches: number;
  batchesAcked: number;
}

export interface ImportSummary {
  ok: boolean;
  error?: string;
  tenant: string;
  files: string[];
  /** Non-blank lines read. */
  lines: number;
  events: {
    /** Records read (lines holding a JSON object). */
    read: number;
    /** Records that became a trail event (duplicates included). */
    mapped: number;
    /** Records that could not become one (see `skipped`). */
    skipped: number;
    /** Exact duplicate records within the input, dropped. */
    duplicates: number;
    /** Defender 1117 records folded into the 1116 of the same detection. */
    merged: number;
    /** Events already stored by an earlier import, not sent again. */
    alreadyImported: number;
    /** Events sent and acked. */
    sent: number;
  };
  byKind: Record<string, number>;
  skipped: { byReason: Record<string, number>; first: Listed[] };
  badLines: { count: number; byReason: Record<string, number>; first: Listed[] };
  hosts: HostSummary[];
  devicesEnrolled: number;
  batches: { sent: number; acked: number; duplicateAcks: number };
}

/**
 * Most events one import holds (they are sorted by time and deduplicated per
 * host before sending, so they are held until the input ends). Bounds the
 * import's memory (issue 11: it grew without bound on big inputs); measured
 * figures are in docs/SECURITY.md.
 */
export const MAX_IMPORT_EVENTS = 1_000_000;

function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

/**
 * Runs `kiseki import`; `args` are the words after `import` (starting with
 * the format, `sysmon`). Writes the JSON summary to `io.stdout` (also when a
 * host fails midway, with `ok: false`), failures to `io.stderr`.
 * @returns the exit code: 0 done, 1 failed, 64 bad command line.
 */
export async function runImportCommand(args: string[], io: CommandIo): Promise<number> {
  try {
    const [format, ...rest] = args;
    if (format === '--help' || format === '-h' || format === 'help') {
      io.stdout.write(IMPORT_USAGE);
      return EXIT_OK;
    }
    if (format === undefined || format.startsWith('-')) throw usageError('name the format to import: kiseki import sysmon ...');
    if (format !== 'sysmon') throw usageError(`unknown import format ${format}: only sysmon is supported`);
    const { values, positionals } = parseFlags(rest, { tenant: { type: 'string' }, computer: { type: 'string' }, url: { type: 'string' } }, true);
    if (values.help === true) {
      io.stdout.write(IMPORT_USAGE);
      return EXIT_OK;
    }
    const supportId = requireFlag(values, 'tenant');
    const computer = flag(values, 'computer')?.trim();
    if (computer !== undefined && (computer === '' || computer.length > 256)) throw usageError('--computer takes a computer name of 1-256 characters');
    const url = agentUrl(values, DEFAULT_AGENT_URL);
    if (positionals.length === 0) throw usageError('name at least one file to import');
    const files = await expandInputs(positionals).catch((err: unknown) => {
      throw isKisekiError(err) ? err : commandError(err instanceof Error ? err.message : String(err));
    });
    return await importSysmon({ supportId, computer, url, files }, io);
  } catch (err) {
    return reportFailure(err, 'import', IMPORT_USAGE, io);
  }
}

async function importSysmon(opts: { supportId: string; computer: string | undefined; url: string; files: string[] }, io: CommandIo): Promise<number> {
  const summary: ImportSummary = {
    ok: false,
    tenant: opts.supportId,
    files: opts.files,
    lines: 0,
    events: { read: 0, mapped: 0, skipped: 0, duplicates: 0, merged: 0, alreadyImported: 0, sent: 0 },
    byKind: {},
    skipped: { byReason: {}, first: [] },
    badLines: { count: 0, byReason: {}, first: [] },
    hosts: [],
    devicesEnrolled: 0,
    batches: { sent: 0, acked: 0, duplicateAcks: 0 },
  };
  return withImportStore(io.dataDir, async (store) => {
    const tenant = requireTenant(store, opts.supportId);
    // Before reading anything: an import that cannot be delivered should fail at once.
    await probeServer(opts.url);

    const input: InputEvent[] = [];
    for (const file of opts.files) {
      for await (const item of readRecords(file)) {
        summary.lines++;
        if (!item.ok) {
          summary.badLines.count++;
          count(summary.badLines.byReason, item.reason);
          if (summary.badLines.first.length < MAX_LISTED) summary.badLines.first.push({ file: item.file, line: item.line, reason: item.reason, ...(item.detail === undefined ? {} : { detail: item.detail }) });
          continue;
        }
        summary.events.read++;
        const mapped = mapRecord(item.record, opts.computer === undefined ? {} : { computer: opts.computer });
        if (!mapped.ok) {
          summary.events.skipped++;
          count(summary.skipped.byReason, mapped.reason);
          if (summary.skipped.first.length < MAX_LISTED) {
            summary.skipped.first.push({ file: item.file, line: item.line, reason: mapped.reason, ...(mapped.eventId === undefined ? {} : { eventId: mapped.eventId }) });
          }
          continue;
        }
        summary.events.mapped++;
        if (input.length >= MAX_IMPORT_EVENTS) {
          throw new KisekiError('ERR_INPUT_TOO_LARGE', {
            maxEvents: MAX_IMPORT_EVENTS,
            reason: `more than ${MAX_IMPORT_EVENTS} events in one import (its events are held to be ordered and deduplicated): split the input by day or by host into several imports; nothing was sent`,
          });
        }
        input.push({ host: mapped.host, event: mapped.event, order: input.length });
      }
    }
    if (summary.events.read === 0) {
      io.stdout.write(`${JSON.stringify(summary)}\n`);
      throw commandError(
        summary.badLines.count > 0
          ? `no records in the input (${summary.badLines.count} bad lines or .evtx issues): the import reads JSON lines and .evtx files`
          : 'the input holds no records',
      );
    }

    const trails = buildTrails(input);
    try {
      for (const trail of trails) {
        summary.events.duplicates += trail.duplicates;
        summary.events.merged += trail.merged;
        const resolved = await resolveDevice(store, io.dataDir, tenant, trail.computer, Date.now());
        if (resolved.enrolled) summary.devicesEnrolled++;
        const tmid = resolved.device.tmid;
        const held = resolved.enrolled ? new Set<string>() : storedRids(store, tmid);
        const events = held.size === 0 ? trail.events : trail.events.filter((e) => !held.has(e.rid));
        const already = trail.events.length - events.length;
        summary.events.alreadyImported += already;
        const host: HostSummary = {
          computer: resolved.identity.computer,
          tmid,
          enrolled: resolved.enrolled,
          ...(resolved.note === undefined ? {} : { note: resolved.note }),
          events: events.length,
          alreadyImported: already,
          duplicates: trail.duplicates,
          firstSeq: null,
          lastSeq: null,
          batches: 0,
          batchesAcked: 0,
        };
        summary.hosts.push(host);
        if (events.length === 0) continue;
        const sent = await sendTrail({ url: opts.url, credentials: resolved.identity, facts: factsFor(resolved.identity.computer), events });
        host.firstSeq = sent.firstSeq ?? null;
        host.lastSeq = sent.lastSeq ?? null;
        host.batches = sent.batches;
        host.batchesAcked = sent.batchesAcked;
        summary.batches.sent += sent.batches;
        summary.batches.acked += sent.batchesAcked;
        summary.batches.duplicateAcks += sent.duplicateAcks;
        summary.events.sent += events.length;
        for (const e of events) count(summary.byKind, e.k);
        io.stderr.write(`kiseki import: ${host.computer}: ${events.length} events as ${tmid}, seq ${host.firstSeq}-${host.lastSeq}\n`);
      }
    } catch (err) {
      // What was acked stays acked: print how far it got, then fail. Running it again sends only the rest.
      summary.error = err instanceof Error ? err.message : String(err);
      io.stdout.write(`${JSON.stringify(summary)}\n`);
      throw err;
    }
    summary.ok = true;
    io.stdout.write(`${JSON.stringify(summary)}\n`);
    return EXIT_OK;
  });
}
