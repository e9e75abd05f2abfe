/**
 * Files and processes a Windows service makes on someone's behalf: BITS
 * (svchost) writes what `bitsadmin /transfer` or `Start-BitsTransfer` asked
 * for, Task Scheduler runs what `schtasks /create /tr` named, the service
 * manager (services.exe) runs what `sc create binPath=` named. The service is
 * the creator or parent on record; the requester is found by its command line
 * naming the file and by time, and is shown as an inference with that
 * evidence (docs/CORRELATION.md, "Provenance").
 */
import type { DeviceState, ProcNode } from '../device-state.js';
import { baseName } from './command-line.js';

/** Processes that write files or start processes for a requester. */
export const SERVICE_WRITERS: ReadonlySet<string> = new Set(['svchost.exe', 'services.exe', 'taskhostw.exe', 'taskhost.exe', 'taskeng.exe', 'wmiprvse.exe', 'system']);

interface RequesterKind {
  service: string;
  /** Requester images and the command-line test that makes them a request. */
  images: ReadonlySet<string>;
  request: RegExp;
}

const KINDS: RequesterKind[] = [
  { service: 'BITS', images: new Set(['bitsadmin.exe']), request: /\/(transfer|addfile|download)\b/i },
  { service: 'BITS', images: new Set(['powershell.exe', 'pwsh.exe']), request: /start-bitstransfer|add-bitsfile|bitstransfer/i },
  { service: 'Task Scheduler', images: new Set(['schtasks.exe']), request: /\/create\b/i },
  { service: 'Task Scheduler', images: new Set(['at.exe']), request: /\d{1,2}:\d{2}/ },
  { service: 'Task Scheduler', images: new Set(['powershell.exe', 'pwsh.exe']), request: /register-scheduledtask|new-scheduledtaskaction/i },
  { service: 'the service manager', images: new Set(['sc.exe']), request: /\b(create|config)\b/i },
  { service: 'the service manager', images: new Set(['powershell.exe', 'pwsh.exe']), request: /new-service\b/i },
  { service: 'WMI', images: new Set(['wmic.exe']), request: /process\s+call\s+create/i },
];

/** Which services fit a writer: BITS and the Task Scheduler live in svchost; tasks may run under taskhostw / taskeng. */
function servicesOf(writer: string | undefined): Set<string> | undefined {
  if (writer === undefined) return undefined;
  if (writer === 'services.exe') return new Set(['the service manager']);
  if (writer === 'taskhostw.exe' || writer === 'taskhost.exe' || writer === 'taskeng.exe') return new Set(['Task Scheduler']);
  if (writer === 'wmiprvse.exe') return new Set(['WMI']);
  if (writer === 'svchost.exe') return new Set(['BITS', 'Task Scheduler']);
  return undefined;
}

export interface Requester {
  node: ProcNode;
  service: string;
  /** The URL the request names, when it is a download. */
  url: string | undefined;
  /** The inference in words: what names the file and how long before. */
  evidence: string;
}

/** Requests are made before the service acts; tasks and services may run long after they were registered. */
const DOWNLOAD_WINDOW_MS = 3_600_000;

/**
 * The process that most likely asked a service for `path` (a file a service
 * wrote, or an image a service started) around time `at`: a requester whose
 * command line names the file, started before `at` (within an hour for
 * downloads), the closest in time. `writer` narrows the services that fit.
 */
export function findRequester(state: DeviceState, path: string, at: number, writer: string | undefined): Requester | undefined {
  const name = baseName(path);
  if (name === '') return undefined;
  const fits = servicesOf(writer);
  let best: Requester | undefined;
  let bestTs = Number.NEGATIVE_INFINITY;
  for (const p of state.procs.values()) {
    const ts = p.start?.ts;
    if (ts === undefined || ts > at + 60_000 || p.cmd === '') continue;
    const image = baseName(p.image);
    const lower = p.cmd.toLowerCase();
    if (!lower.includes(name)) continue;
    const kind = KINDS.find((k) => k.images.has(image) && k.request.test(p.cmd) && (fits === undefined || fits.has(k.service)));
    if (kind === undefined) continue;
    if (kind.service === 'BITS' && at - ts > DOWNLOAD_WINDOW_MS) continue;
    if (ts < bestTs) continue;
    const url = /(https?|ftp):\/\/[^\s"'<>]+/i.exec(p.cmd)?.[0];
    const secs = Math.max(0, Math.round((at - ts) / 1000));
    best = {
      node: p,
      service: kind.service,
      url: kind.service === 'BITS' ? url : undefined,
      evidence: `${image} (pid ${p.pid ?? '?'}) asked ${kind.service} for ${name} by its command line, ${secs} s before${writer === undefined ? '' : ` ${writer} acted`}`,
    };
    bestTs = ts;
  }
  return best;
}
