/**
 * `kiseki detect --tenant S --tmid T --path P [--sha256 H] [--at TIME]`:
 * injects an `av.detect` for a file on an imported device, for investigations
 * where the antivirus alert came from elsewhere (seed 001: the customer brings
 * the detection time and the suspected file). The event goes through the
 * device's import identity like any agent batch, so the alert and its quick
 * report are made by the engine exactly as for a live detection, with the
 * look-back counted from `--at`.
 */
import { createHash } from 'node:crypto';
import { alertIdForDetection } from '../../engine/index.js';
import type { TrailEvent } from '../../core/contracts.js';
import { enrichDetection } from './import-trail.js';
import { DEFAULT_AGENT_URL, probeServer, sendTrail } from './import-client.js';
import { agentUrl, commandError, EXIT_OK, factsFor, flag, parseFlags, reportFailure, requireFlag, requireTenant, usageError, withImportStore, type CommandIo } from './command-support.js';
import { loadIdentities } from './import-identities.js';
import { parseUtcTime, type ImportedEvent } from './sysmon-mapper.js';
import { storedEvents } from './stored-trail.js';

export const DETECT_USAGE = `Usage:
  kiseki detect --tenant SUPPORT_ID --tmid TMID --path PATH [--sha256 HASH] [--at TIME]
                [--threat NAME] [--url ws://127.0.0.1:9100/agent/v1] [--data DIR]

Injects an antivirus detection (engine "import", action "allowed") for a file on a device
created by \`kiseki import\`; the engine then writes the alert and its quick report.
  --path     full path of the suspected file, as in the device's trail
  --sha256   its SHA-256 (default: the hash the trail knows for that path, if any)
  --at       detection time, UTC: 2024-01-02T03:04:05Z, 2024-01-02 03:04:05 or epoch ms (default: now)
  --threat   threat name (default customer-reported)
The server must be running (\`kiseki start\`). Prints the event's seq and the alert id.
`;

function parseAt(v: string | undefined): number {
  if (v === undefined) return Date.now();
  const s = v.trim();
  const t = /^\d{10,13}$/.test(s) ? parseUtcTime(Number(s)) : parseUtcTime(s);
  if (t === undefined) throw usageError('--at takes a UTC time like 2024-01-02T03:04:05Z, 2024-01-02 03:04:05 or epoch ms');
  return t;
}

/**
 * The `av.detect` event `kiseki detect` injects (engine "import", action
 * "allowed"), with a record id derived from the device, file and time so that
 * injecting the same detection twice is recognised. `kiseki eval` raises its
 * detections with it too.
 */
export function detectionEvent(tmid: string, d: { path: string; ts: number; threat: string; sha256?: string }): ImportedEvent {
  const sha = d.sha256?.toLowerCase();
  const rid = createHash('sha256').update(`detect|${tmid}|${d.path.toLowerCase()}|${sha ?? ''}|${d.ts}`).digest('hex').slice(0, 24);
  const detection: ImportedEvent = { ts: d.ts, k: 'av.detect', engine: 'import', threat: d.threat, path: d.path, action: 'allowed', src: 'detect', rid };
  if (sha !== undefined) detection.sha256 = sha;
  return detection;
}

/**
 * Runs `kiseki detect`; `args` are the words after `detect`. Prints one JSON
 * line: tmid, seq, ts, path, sha256, pg, alertId (and `duplicate: true`
 * when the same detection was injected before).
 * @returns the exit code: 0 done, 1 failed, 64 bad command line.
 */
export async function runDetectCommand(args: string[], io: CommandIo): Promise<number> {
  try {
    const { values } = parseFlags(
      args,
      { tenant: { type: 'string' }, tmid: { type: 'string' }, path: { type: 'string' }, sha256: { type: 'string' }, at: { type: 'string' }, threat: { type: 'string' }, url: { type: 'string' } },
      false,
    );
    if (values.help === true) {
      io.stdout.write(DETECT_USAGE);
      return EXIT_OK;
    }
    const supportId = requireFlag(values, 'tenant');
    const tmidArg = requireFlag(values, 'tmid');
    const path = requireFlag(values, 'path').replace(/^file:_/i, '');
    const sha = flag(values, 'sha256')?.trim();
    if (sha !== undefined && !/^[0-9a-f]{64}$/i.test(sha)) throw usageError('--sha256 takes 64 hexadecimal characters');
    const threat = (flag(values, 'threat') ?? 'customer-reported').trim() || 'customer-reported';
    const ts = parseAt(flag(values, 'at'));
    const url = agentUrl(values, DEFAULT_AGENT_URL);

    return await withImportStore(io.dataDir, async (store) => {
      requireTenant(store, supportId);
      const tmid = store.devices.get(tmidArg) !== undefined ? tmidArg : tmidArg.toUpperCase();
      const device = store.devices.get(tmid);
      if (device === undefined) throw commandError(`no device with TMID ${tmidArg}`);
      if (device.supportId !== supportId) throw commandError(`device ${tmid} does not belong to tenant ${supportId}`);
      const identity = loadIdentities(io.dataDir).find((i) => i.tmid === tmid && i.supportId === supportId);
      if (identity === undefined || store.devices.authenticate(tmid, identity.token) === undefined) {
        throw commandError(`device ${tmid} (${device.computer}) was not created by \`kiseki import\` (no usable identity in import-identities.json): detect works on imported devices only`);
      }
      await probeServer(url);

      const detection = detectionEvent(tmid, { path, ts, threat, ...(sha === undefined ? {} : { sha256: sha }) });
      const rid = detection.rid;
      // One pass over the stored trail: the process and hash of the file, and an earlier injection of the same detection.
      let earlier: Record<string, unknown> | undefined;
      const trail = (function* () {
        for (const e of storedEvents(store, tmid)) {
          if (e.rid === rid) earlier = e;
          yield e;
        }
      })();
      enrichDetection(detection, trail);

      let seq: number;
      let duplicate = false;
      if (earlier !== undefined && typeof earlier.seq === 'number') {
        seq = earlier.seq;
        duplicate = true;
      } else {
        const sent = await sendTrail({ url, credentials: identity, facts: factsFor(identity.computer), events: [detection] });
        if (sent.firstSeq === undefined) throw commandError('the detection was not sent');
        seq = sent.firstSeq;
      }
      // A detection of a file already alerted on this device within 72 h is counted on that
      // alert (dedup): print the id `kiseki report` knows, not one no alert will ever have.
      store.refreshReads();
      const alertId = alertIdForDetection(store, tmid, { ...detection, seq } as TrailEvent);
      const out = {
        tmid,
        computer: device.computer,
        seq,
        ts,
        path,
        sha256: detection.sha256 ?? null,
        pg: detection.pg ?? null,
        alertId,
        ...(duplicate ? { duplicate: true } : {}),
      };
      io.stdout.write(`${JSON.stringify(out)}\n`);
      return EXIT_OK;
    });
  } catch (err) {
    return reportFailure(err, 'detect', DETECT_USAGE, io);
  }
}
