/**
 * Builds the quick report of a detection (SPEC §4, seed 000 §4-1): the eight
 * sections, each listing the events that prove it, from the device's state
 * (process table, file provenance) and the raw batch log (the events
 * themselves). Then the rules judge it. Pure given its inputs, so replaying
 * the log after a crash rebuilds the same report.
 */
import type {
  EvidenceItem,
  FileAttributes,
  QuickReport,
  ReportSection,
  ReportSectionId,
  SigmaReportHit,
  TrailEvent,
} from '../core/contracts.js';
import { count } from '../core/plural.js';
import { foldKey, isUserWritablePath, type DeviceState, type EventRef, type ProcNode } from './device-state.js';
import { describeAccess, decodeProcessAccess, parseAccessMask } from './facts/access-mask.js';
import { decodeEncodedCommand } from './facts/encoded-command.js';
import { hostedTargets, targetNames } from './provenance/command-line.js';
import { findRequester, SERVICE_WRITERS } from './provenance/service-requests.js';
import { judge, type CompiledRuleSet } from './rules/evaluate.js';
import type { ThreatIntel } from './intel/index.js';
import { verdictFactors, type FleetPrevalence } from './verdict/factors.js';
import type { PrevalencePolicy } from './prevalence-stage.js';
import type { PrevalenceRecord } from '../storage/index.js';
import { decideVerdict } from './verdict/model.js';

/** Reads the events of one batch of this device's log (decoded, in seq order). */
export type BatchReader = (lsn: number) => readonly TrailEvent[] | undefined;

export interface DetectionContext {
  alertId: string;
  revision: number;
  now: number;
  tmid: string;
  supportId: string;
  computer: string;
  detection: TrailEvent;
  detectionLsn: number;
  state: DeviceState;
  readBatch: BatchReader;
  rules: CompiledRuleSet;
  intel: ThreatIntel;
  /** Sigma detections of the device on the report's process tree ("rules that fired"); absent when Sigma is off. */
  sigmaHits?: SigmaHitsReader;
  /** The tenant's fleet prevalence of a file (lower-case SHA-256) and the thresholds that weigh it; absent when prevalence is off. */
  prevalence?: { read: (sha256: string) => PrevalenceRecord | undefined; policy: PrevalencePolicy };
}

/** The stored Sigma detections of a device on processes `pgs` (folded GUIDs), endpoint time in [from, to]. */
export type SigmaHitsReader = (pgs: ReadonlySet<string>, from: number, to: number) => SigmaReportHit[];

export const SECTION_TITLES: Record<ReportSectionId, string> = {
  origin: '1. How the file came to be',
  chain: '2. Process chain that led to its execution',
  descendants: '3. Processes it executed',
  filesWritten: '4. Files written',
  registry: '5. Registry edited',
  filesRead: '6. Files read',
  network: '7. Network communication',
  attributes: '8. File attributes',
  processAccess: '9. Process access and injection',
  imageLoads: '10. Images loaded',
  pipes: '11. Named pipes',
};

/** DLLs whose load says what a process is up to (dumping memory, reading credentials, hosting .NET or PowerShell). */
const NOTABLE_DLLS = new Set(['dbghelp.dll', 'dbgcore.dll', 'comsvcs.dll', 'samlib.dll', 'vaultcli.dll', 'wdigest.dll', 'clr.dll', 'clrjit.dll', 'mscoree.dll', 'system.management.automation.dll', 'system.management.automation.ni.dll', 'scrobj.dll', 'jscript.dll', 'jscript9.dll', 'vbscript.dll', 'wshom.ocx', 'scrrun.dll', 'winhttp.dll', 'wininet.dll']);

const MAIL_CLIENTS = new Set(['outlook.exe', 'thunderbird.exe', 'hxoutlook.exe', 'olk.exe', 'winmail.exe']);
const SCRIPT_WRITERS = new Set(['powershell.exe', 'pwsh.exe', 'certutil.exe', 'bitsadmin.exe', 'mshta.exe', 'wscript.exe', 'cscript.exe', 'cmd.exe', 'curl.exe', 'rundll32.exe', 'regsvr32.exe']);
/** How far before the detection a report reads the device's events (SPEC §4: 7 days). */
export const LOOK_BACK_MS = 7 * 24 * 3600 * 1000;

/** Bound on the evidence listed per section; the report says how many were left out. */
const MAX_ITEMS_PER_SECTION = 500;

function basename(path: string): string {
  const i = Math.max(path.lastIndexOf('\\'), path.lastIndexOf('/'));
  return (i < 0 ? path : path.slice(i + 1)).toLowerCase();
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

/** Finds the event with `seq` in a batch (events are in seq order, from the batch's first). */
function eventAt(events: readonly TrailEvent[], seq: number): TrailEvent | undefined {
  const first = events[0]?.seq;
  if (typeof first === 'number') {
    const guess = events[seq - first];
    if (guess !== undefined && guess.seq === seq) return guess;
  }
  return events.find((e) => e.seq === seq);
}

export function buildQuickReport(ctx: DetectionContext): QuickReport {
  const { state, detection, tmid } = ctx;
  const item = (e: TrailEvent, note?: string): EvidenceItem => ({
    ref: { tmid, seq: e.seq, ts: e.ts, k: e.k },
    event: e as Record<string, unknown>,
    ...(note === undefined ? {} : { note }),
  });
  const detectedAt = detection.ts;
  // The look-back bound: the device state may remember processes and files for longer
  // (and the log may hold older batches), but a report only uses the last 7 days.
  const lookBackFrom = detectedAt - LOOK_BACK_MS;
  const fetch = (ref: EventRef | undefined): TrailEvent | undefined => {
    if (ref === undefined) return undefined;
    const events = ctx.readBatch(ref.lsn);
    const e = events === undefined ? undefined : eventAt(events, ref.seq);
    return e === undefined || e.ts < lookBackFrom ? undefined : e;
  };

  const path = str(detection.path) ?? '';
  const sha256 = str(detection.sha256);

  // The detected process: the one the antivirus names, if it runs the file; else the latest run of that image;
  // else the host that ran it by its command line (script host, loader); else the process that loaded it as an image.
  let detected: ProcNode | undefined = state.proc(str(detection.pg));
  if (detected !== undefined && path !== '' && foldKey(detected.image) !== foldKey(path)) detected = undefined;
  if (detected === undefined && path !== '') {
    const candidate = state.latestProcessOfImage(path);
    if (candidate !== undefined && (candidate.start?.ts ?? 0) <= detectedAt) detected = candidate;
  }
  let how: 'process' | 'hosted' | 'loaded' | undefined = detected === undefined ? undefined : 'process';
  let hostedNote: string | undefined;
  let hostedTarget: string | undefined;
  const fileOrigin = state.file(path);
  if (detected === undefined && path !== '') {
    const hosted = findHost(state, path, detectedAt);
    if (hosted !== undefined) {
      detected = hosted.node;
      how = 'hosted';
      hostedNote = `runs ${hosted.target} (${hosted.how})`;
      hostedTarget = hosted.target;
    }
  }
  let loadEvent: TrailEvent | undefined;
  if (detected === undefined && fileOrigin?.loadedBy !== undefined) {
    const loader = state.proc(fileOrigin.loadedBy);
    loadEvent = fetch(fileOrigin.loaded);
    if (loader !== undefined && loadEvent !== undefined && loadEvent.ts <= detectedAt) {
      detected = loader;
      how = 'loaded';
      hostedNote = `loaded ${path} as an image`;
    }
  }
  // A process known only by its own events (it started before the log began) ran all the same.
  const executed = detected !== undefined && (detected.start !== undefined || how !== 'process' || detected.lsns.length > 0);
  if (!executed) how = undefined;

  // 1. Origin.
  const originItems: EvidenceItem[] = [];
  let originKind = 'unknown';
  let originSummary = 'No record of how the file was created.';
  let originUrl = fileOrigin?.originUrl;
  let creator: ProcNode | undefined;
  if (fileOrigin !== undefined && (fileOrigin.created !== undefined || fileOrigin.lastWrite !== undefined || fileOrigin.originUrl !== undefined)) {
    const createdEvent = fetch(fileOrigin.created) ?? fetch(fileOrigin.lastWrite);
    if (createdEvent !== undefined) originItems.push(item(createdEvent, 'created the detected file'));
    creator = state.proc(fileOrigin.pg);
    const creatorStart = fetch(creator?.start);
    if (creatorStart !== undefined) originItems.push(item(creatorStart, 'the process that created the file'));
    const creatorImage = basename(creator?.image ?? '');
    const removable = fileOrigin.vol === 'removable' || state.removableDrives.has(path.slice(0, 2).toUpperCase());
    if (fileOrigin.originUrl !== undefined || (fileOrigin.zone !== undefined && fileOrigin.zone >= 3)) originKind = 'internet';
    else if (MAIL_CLIENTS.has(creatorImage) || /\\content\.outlook\\|\\olk[0-9a-f]*\\/i.test(path)) originKind = 'mail';
    else if (removable) originKind = 'removable';
    else if (SCRIPT_WRITERS.has(creatorImage)) originKind = 'script';
    // The System process writes what arrives over SMB (admin shares): a copy from another machine.
    else if (creatorImage === 'system' || (creator === undefined && /^system$/i.test(str(createdEvent?.image) ?? ''))) originKind = 'remote';
    else if (creator !== undefined) originKind = 'local';
    const by = creator?.image ? basename(creator.image) : 'an unknown process';
    originSummary =
      originKind === 'internet'
        ? `Downloaded by ${by}${fileOrigin.originUrl ? ` from ${fileOrigin.originUrl}` : ' (Mark of the Web)'}${fileOrigin.referrerUrl ? ` (referrer ${fileOrigin.referrerUrl})` : ''}.`
        : originKind === 'mail'
          ? `Saved by the mail client ${by}.`
          : originKind === 'remote'
            ? 'Written by the System process: copied over SMB from another machine.'
            : originKind === 'removable'
            ? `Came from a removable volume (${path.slice(0, 2)}).`
            : originKind === 'script'
              ? `Written by ${by}, a script host or LOLBin.`
              : `Created by ${by}.`;
  } else if (/^[a-z]:/i.test(path) && state.removableDrives.has(path.slice(0, 2).toUpperCase())) {
    originKind = 'removable';
    originSummary = `On a removable volume (${path.slice(0, 2)}).`;
  }
  // Written by a Windows service on a requester's behalf (BITS, Task Scheduler, the service manager): an inference.
  if (path !== '' && (creator === undefined || SERVICE_WRITERS.has(basename(creator.image)))) {
    const at = fetch(fileOrigin?.created)?.ts ?? fetch(fileOrigin?.lastWrite)?.ts ?? detectedAt;
    const req = findRequester(state, path, at, creator === undefined ? undefined : basename(creator.image));
    const reqStart = req === undefined ? undefined : fetch(req.node.start);
    if (req !== undefined && reqStart !== undefined) {
      originItems.push(item(reqStart, `inferred: ${req.evidence}`));
      if (req.url !== undefined) {
        originKind = 'internet';
        originUrl ??= req.url;
      } else if (originKind === 'unknown' || originKind === 'local') originKind = 'script';
      originSummary = `Inferred: ${basename(req.node.image)} asked ${req.service} for it${req.url === undefined ? '' : ` from ${req.url}`} (${req.evidence}).`;
    } else if (creator !== undefined && state.remoteLogons.length > 0) {
      // No local requester: a service wrote it just after someone logged on over the network (schtasks /S, sc \\host, WMI, PsExec).
      for (let i = state.remoteLogons.length - 1; i >= 0; i--) {
        const ref = state.remoteLogons[i]!;
        if (ref.ts > at || ref.ts < at - 120_000) continue;
        const logon = fetch(ref);
        if (logon === undefined) continue;
        originItems.push(item(logon, `inferred: written by ${basename(creator.image)} ${Math.round((at - ref.ts) / 1000)} s after a network logon from ${str(logon.srcIp)}${str(logon.userName) === undefined ? '' : ` as ${str(logon.userName)}`}: created remotely`));
        originKind = 'remote';
        originSummary = `Inferred: created remotely by ${str(logon.userName) ?? 'a user'} from ${str(logon.srcIp)} (${basename(creator.image)} wrote it just after their network logon).`;
        break;
      }
    }
  }
  // A host that fetched the file by URL (mshta / regsvr32 / wmic /format: https://…) downloaded it.
  if (hostedNote !== undefined && how === 'hosted' && /^[a-z]+:\/\//i.test(hostedTarget ?? '')) {
    originUrl ??= hostedTarget;
    if (originKind !== 'internet' && originKind !== 'mail') {
      originKind = 'internet';
      originSummary = `Downloaded by ${basename(detected!.image)} from ${hostedTarget}, which ran it.`;
    }
  }
  const motwDeleted = fetch(fileOrigin?.motwDeleted);
  if (motwDeleted !== undefined) {
    originItems.push(item(motwDeleted, 'its Mark of the Web (Zone.Identifier) was deleted: it came from the internet'));
    if (originKind === 'unknown' || originKind === 'local' || originKind === 'script') originKind = 'internet';
    originSummary += ' Its Mark of the Web was deleted afterwards.';
  }

  // 2. Chain: ancestors from the root down to the detected process.
  const chainItems: EvidenceItem[] = [];
  const chainNames: string[] = [];
  if (detected !== undefined) {
    const seen = new Set<string>();
    let p: ProcNode | undefined = detected;
    let child: ProcNode | undefined;
    while (p !== undefined && !seen.has(foldKey(p.pg)) && chainItems.length < 64) {
      seen.add(foldKey(p.pg));
      const start = fetch(p.start);
      if (start !== undefined) chainItems.push(item(start, processNote(start, p === detected ? hostedNote : undefined)));
      else {
        // Known only from the parent fields copied into a child's start event (it started before the log begins).
        let childStart = child === undefined ? undefined : fetch(child.start);
        for (let i = 0; childStart === undefined && i < p.children.length && i < 8; i++) childStart = fetch(state.proc(p.children[i])?.start);
        if (childStart !== undefined) {
          const note = p === detected && hostedNote !== undefined ? `${hostedNote}; known from a child's start event only` : 'parent known from this start event only';
          chainItems.push({ ...item(childStart, note), event: { k: 'proc.start', pg: p.pg, image: p.image, cmd: p.cmd } });
        }
      }
      chainNames.push(basename(p.image) || p.pg);
      child = p;
      p = state.proc(p.ppg);
      if (p === undefined && child.ppg !== undefined && child.pimage !== undefined && !seen.has(foldKey(child.ppg))) {
        chainNames.push(basename(child.pimage));
        const childStart = fetch(child.start);
        if (childStart !== undefined) {
          chainItems.push({ ...item(childStart, 'parent known from this start event only'), event: { k: 'proc.start', pg: child.ppg, image: child.pimage, cmd: child.pcmd } });
        }
      }
    }
    // A service, task or WMI host started it: who asked for that, by command line and time (an inference).
    const top = detected;
    const parentImage = basename(top.pimage ?? state.proc(top.ppg)?.image ?? '');
    if (SERVICE_WRITERS.has(parentImage) || parentImage === 'wmiprvse.exe') {
      const req = findRequester(state, top.image, fetch(top.start)?.ts ?? detectedAt, parentImage);
      const reqStart = req === undefined ? undefined : fetch(req.node.start);
      if (req !== undefined && reqStart !== undefined) {
        chainItems.push(item(reqStart, `inferred: ${req.evidence}`));
        chainNames.push(`(${basename(req.node.image)} via ${req.service})`);
      }
    }
    chainItems.reverse();
    chainNames.reverse();
  }

  // 3. Descendants, breadth first.
  const tree: ProcNode[] = [];
  if (detected !== undefined) {
    const queue = [...detected.children];
    const seen = new Set<string>([foldKey(detected.pg)]);
    while (queue.length > 0 && tree.length < MAX_ITEMS_PER_SECTION) {
      const pg = queue.shift()!;
      if (seen.has(foldKey(pg))) continue;
      seen.add(foldKey(pg));
      const node = state.proc(pg);
      if (node === undefined) continue;
      tree.push(node);
      queue.push(...node.children);
    }
  }
  const descendantItems: EvidenceItem[] = [];
  for (const node of tree) {
    const start = fetch(node.start);
    if (start !== undefined) descendantItems.push(item(start, processNote(start, undefined)));
  }
  descendantItems.sort((a, b) => a.ref.seq - b.ref.seq);

  // 4-7. Activity of the detected process and its descendants, read from the log.
  const pgSet = new Set<string>();
  const lsns = new Set<number>();
  // A file that did not run is an artifact of its creator (a dump, a hive copy, a dropped script): the creator's activity is what shows intent.
  const actors = detected === undefined ? (executed || creator === undefined ? tree : [creator]) : [detected, ...tree];
  // Every other run of the detected file within the look-back acted for it too (a tool run several times).
  if (how === 'process' && detected !== undefined) {
    const want = foldKey(detected.image);
    let runs = 0;
    for (const p of state.procs.values()) {
      if (runs >= 16 || p === detected || foldKey(p.image) !== want || (p.start?.ts ?? detectedAt) < lookBackFrom || (p.start?.ts ?? 0) > detectedAt) continue;
      actors.push(p);
      runs++;
    }
  }
  for (const node of actors) {
    pgSet.add(foldKey(node.pg));
    for (const l of node.lsns) lsns.add(l);
  }
  const written: EvidenceItem[] = [];
  const registry: EvidenceItem[] = [];
  const read: EvidenceItem[] = [];
  const network: EvidenceItem[] = [];
  const access: EvidenceItem[] = [];
  const loads: EvidenceItem[] = [];
  const pipes: EvidenceItem[] = [];
  const detectedImage = detected === undefined ? '' : foldKey(detected.image);
  const treeImages = new Set<string>();
  for (const node of detected === undefined ? tree : [detected, ...tree]) if (node.image !== '') treeImages.add(foldKey(node.image));
  let omitted = 0;
  const push = (list: EvidenceItem[], it: EvidenceItem) => {
    if (list.length < MAX_ITEMS_PER_SECTION) list.push(it);
    else omitted++;
  };
  for (const lsn of [...lsns].sort((a, b) => a - b)) {
    const events = ctx.readBatch(lsn);
    if (events === undefined) continue;
    for (const e of events) {
      if (typeof e.pg !== 'string' || e.ts < lookBackFrom || !pgSet.has(foldKey(e.pg))) continue;
      switch (e.k) {
        case 'file.create':
        case 'file.write':
        case 'file.rename':
          push(written, item(e));
          break;
        case 'file.delete': {
          const p = foldKey(str(e.path) ?? '');
          const note = /:zone\.identifier(:\$data)?$/.test(p)
            ? 'Mark of the Web removed'
            : p === foldKey(path) || treeImages.has(p)
              ? p === foldKey(str(e.image) ?? '') || p === detectedImage
                ? 'self-deletion'
                : 'deleted the detected file or a process image of the tree'
              : undefined;
          push(written, item(e, note));
          break;
        }
        case 'file.time': {
          const was = typeof e.prevCtime === 'number' ? new Date(e.prevCtime).toISOString() : 'unknown';
          const now = typeof e.ctime === 'number' ? new Date(e.ctime).toISOString() : 'unknown';
          push(written, item(e, `timestomping: creation time set to ${now} (was ${was})`));
          break;
        }
        case 'proc.access': {
          const target = basename(str(e.timage) ?? '');
          const mask = parseAccessMask(e.access);
          const rights = describeAccess(e.access) ?? String(e.access ?? 'unknown rights');
          const lsass = target === 'lsass.exe' ? (mask !== undefined && decodeProcessAccess(mask).readsMemory ? 'LSASS memory readable: credential theft' : 'LSASS opened') : undefined;
          // Opening one's own children is routine; list access to other processes.
          const strong = mask !== undefined && (decodeProcessAccess(mask).full || decodeProcessAccess(mask).writesMemory);
          if (lsass !== undefined || strong || !treeImages.has(foldKey(str(e.timage) ?? ''))) push(access, item(e, `${target || 'a process'} opened with ${rights}${lsass === undefined ? '' : ` (${lsass})`}`));
          break;
        }
        case 'proc.remote_thread':
          push(access, item(e, `remote thread created in ${basename(str(e.timage) ?? '') || 'another process'}${str(e.startFunction) === undefined ? '' : ` at ${str(e.startFunction)}`}`));
          break;
        case 'image.load': {
          const note = imageLoadNote(e, state, path);
          if (note !== undefined) push(loads, item(e, note));
          break;
        }
        case 'pipe.create':
        case 'pipe.connect':
          push(pipes, item(e));
          break;
        case 'service.install':
        case 'service.config':
        case 'task.create':
          push(registry, item(e));
          break;
        case 'reg.set':
        case 'reg.create':
        case 'reg.delete':
          push(registry, item(e));
          break;
        case 'file.read':
          push(read, item(e));
          break;
        case 'net.conn': {
          const rip = str(e.rip);
          const name = str(e.rhost) ?? (rip === undefined ? undefined : state.dns.get(rip));
          push(network, item(e, name === undefined ? undefined : `${rip} is ${name}`));
          break;
        }
        case 'net.dns':
          push(network, item(e));
          break;
      }
    }
  }

  // The creator registered the file somewhere that runs it (a COM server, a Run value, a service): that is part of its story.
  if (creator !== undefined && !pgSet.has(foldKey(creator.pg)) && path !== '') {
    const want = foldKey(path);
    const cpg = foldKey(creator.pg);
    // Only the batches from the file's creation on, and few of them: this reads the log in the shard.
    const from = fileOrigin?.created?.lsn ?? fileOrigin?.lastWrite?.lsn ?? 0;
    for (const lsn of creator.lsns.filter((l) => l >= from).slice(0, 4)) {
      for (const e of ctx.readBatch(lsn) ?? []) {
        if (e.k !== 'reg.set' || typeof e.pg !== 'string' || foldKey(e.pg) !== cpg || e.ts < lookBackFrom) continue;
        if (typeof e.data === 'string' && foldKey(e.data).includes(want)) push(registry, item(e, 'the file’s creator registered it here'));
      }
    }
  }

  // Services and tasks installed device-wide (System 7045 / 7040, Security 4698: no acting process) that name the file or a tree image.
  if (state.persistence.length > 0) {
    const names = [foldKey(path), ...treeImages].filter((n) => n !== '');
    for (const ref of state.persistence) {
      if (ref.ts < lookBackFrom || ref.ts > detectedAt + 600_000) continue;
      const e = fetch(ref);
      if (e === undefined || (typeof e.pg === 'string' && pgSet.has(foldKey(e.pg)))) continue;
      const text = `${str(e.imagePath) ?? ''} ${str(e.command) ?? ''} ${str(e.content) ?? ''}`.toLowerCase();
      const task = str(e.task)?.toLowerCase();
      if (task !== undefined && foldKey(path).endsWith(`\\tasks${task.startsWith('\\') ? '' : '\\'}${task}`)) push(registry, item(e, 'the scheduled task the detected file defines'));
      else if (names.some((n) => text.includes(n))) push(registry, item(e, 'names the detected file or a process of its tree'));
    }
  }

  // 8. Attributes. The signature is the detected process's only when the file is that process's image.
  // The file's own image load (a DLL run by a host or loaded) carries its signature.
  const loadSig = loadEvent ?? fetch(fileOrigin?.loaded);
  const ownImage = how === 'process' ? detected : undefined;
  const attributes: FileAttributes = {
    path,
    sha256: sha256 ?? fileOrigin?.sha256 ?? ownImage?.sha256 ?? str(loadSig?.sha256),
    size: fileOrigin?.size,
    signer: ownImage?.signer ?? str(loadSig?.signer) ?? str(detection.signer),
    sig: ownImage?.sig ?? str(loadSig?.sig) ?? str(detection.sig),
    firstSeen: fileOrigin?.firstSeen ?? detected?.start?.ts,
    vol: fileOrigin?.vol,
  };
  const attributeItems: EvidenceItem[] = [{ ...item(detection, 'the detection'), event: { ...(detection as Record<string, unknown>), ...attributes } }];

  const sections: ReportSection[] = [
    { id: 'origin', title: SECTION_TITLES.origin, summary: originSummary, items: originItems },
    {
      id: 'chain',
      title: SECTION_TITLES.chain,
      summary: executed
        ? `${chainNames.join(' → ')}${how === 'hosted' ? ` (${hostedNote})` : how === 'loaded' ? ` (${basename(detected!.image)} ${hostedNote})` : ''}`
        : 'The file did not run (no process start, no host running it, no image load recorded).',
      items: chainItems,
    },
    { id: 'descendants', title: SECTION_TITLES.descendants, summary: count(descendantItems.length, 'child process'), items: descendantItems },
    { id: 'filesWritten', title: SECTION_TITLES.filesWritten, summary: count(written.length, 'file event'), items: written },
    { id: 'registry', title: SECTION_TITLES.registry, summary: count(registry.length, 'registry change'), items: registry },
    { id: 'filesRead', title: SECTION_TITLES.filesRead, summary: count(read.length, 'file read'), items: read },
    {
      id: 'network',
      title: SECTION_TITLES.network,
      summary: count(network.length, 'network event') + (omitted > 0 ? `; ${count(omitted, 'more event')} left out` : ''),
      items: network,
    },
    {
      id: 'attributes',
      title: SECTION_TITLES.attributes,
      summary: `${path} sha256=${attributes.sha256 ?? 'unknown'} signer=${attributes.signer ?? 'none'} (${attributes.sig ?? 'unknown'})`,
      items: attributeItems,
    },
    { id: 'processAccess', title: SECTION_TITLES.processAccess, summary: accessSummary(access), items: access },
    { id: 'imageLoads', title: SECTION_TITLES.imageLoads, summary: count(loads.length, 'notable image load'), items: loads },
    { id: 'pipes', title: SECTION_TITLES.pipes, summary: count(pipes.length, 'named pipe event'), items: pipes },
  ];
  // The origin's evidence also counts for rules on the origin URL.
  const originForRules = originItems.map((it) => (it.note === 'created the detected file' ? { ...it, event: { ...it.event, originUrl } } : it));
  const judgement = judge(ctx.rules, {
    sections: sections.map((s) => (s.id === 'origin' ? { ...s, items: originForRules } : s)),
    facts: { originKind, executed, action: str(detection.action) ?? 'unknown' },
    intel: ctx.intel,
    dnsNames: state.dns,
  });

  // Rules that fired: Sigma detections on any process of the tree (chain, the detected process, descendants)
  // from the look-back to now; the verdict model weighs them by level.
  let sigma: SigmaReportHit[] | undefined;
  if (ctx.sigmaHits !== undefined) {
    const tree = new Set<string>();
    for (const s of sections) {
      if (s.id !== 'chain' && s.id !== 'descendants') continue;
      for (const it of s.items) if (typeof it.event.pg === 'string') tree.add(foldKey(it.event.pg));
    }
    if (typeof detection.pg === 'string') tree.add(foldKey(detection.pg));
    for (const pg of pgSet) tree.add(pg);
    sigma = ctx.sigmaHits(tree, detection.ts - LOOK_BACK_MS, Number.MAX_SAFE_INTEGER);
  }
  const detectedStart = how === 'process' ? fetch(detected?.start) : undefined;
  const factors = verdictFactors({
    sections,
    path,
    executed,
    how,
    originKind,
    sig: attributes.sig,
    signer: attributes.signer,
    originalFileName: str(detectedStart?.originalFileName) ?? str(loadSig?.originalFileName),
    sigma,
    fileRef: attributeItems[0]!.ref,
    motwDeleted: motwDeleted === undefined ? undefined : item(motwDeleted).ref,
    ...(ctx.prevalence === undefined || attributes.sha256 === undefined ? {} : { prevalence: fleetPrevalence(ctx.prevalence, attributes.sha256, tmid, detectedAt) }),
  });
  const outcome = decideVerdict(ctx.rules.thresholds, judgement.hits, factors, executed);

  return {
    alertId: ctx.alertId,
    revision: ctx.revision,
    createdAt: ctx.now,
    tmid,
    supportId: ctx.supportId,
    computer: ctx.computer,
    detection: item(detection, 'the detection'),
    originKind,
    executed,
    sections,
    rules: outcome.hits,
    ...(sigma === undefined ? {} : { sigma }),
    score: outcome.score,
    verdict: outcome.verdict,
    ...(how === undefined || detected === undefined ? {} : { execution: { how, pg: detected.pg, image: detected.image, detail: how === 'process' ? 'a process started from the file' : hostedNote! } }),
    confidence: outcome.confidence,
  };
}

/** The detected file's prevalence at the detection: only devices that had it by then count. */
function fleetPrevalence(source: NonNullable<DetectionContext['prevalence']>, sha256: string, tmid: string, detectedAt: number): FleetPrevalence {
  const record = source.read(sha256.toLowerCase());
  let devices = 0;
  let others = 0;
  let firstSeen: number | undefined;
  for (const [device, first] of record?.devices ?? []) {
    if (first > detectedAt) continue;
    devices++;
    if (device !== tmid) others++;
    if (firstSeen === undefined || first < firstSeen) firstSeen = first;
  }
  // Past the cap the record keeps no ids: its earliest sighting still bounds the fleet's.
  const saturated = record?.saturated === true && devices === record.devices.length;
  if (saturated && record!.firstSeen < (firstSeen ?? Number.POSITIVE_INFINITY)) firstSeen = record!.firstSeen;
  return { devices, saturated, otherDevices: others, firstSeen, signer: record?.signer, sig: record?.sig, minDevices: source.policy.minDevices, minDays: source.policy.minDays, detectedAt };
}

function accessSummary(items: readonly EvidenceItem[]): string {
  const lsass = items.some((it) => basename(str(it.event.timage) ?? '') === 'lsass.exe');
  const threads = items.filter((it) => it.event.k === 'proc.remote_thread').length;
  return `${count(items.length, 'process access event')}${lsass ? '; LSASS was opened' : ''}${threads > 0 ? `; ${count(threads, 'remote thread')}` : ''}`;
}

/** The note on a process start: what a host runs, and a decoded -EncodedCommand. */
function processNote(start: TrailEvent, hosted: string | undefined): string | undefined {
  const image = str(start.image) ?? '';
  const cmd = str(start.cmd) ?? '';
  const decoded = cmd === '' ? undefined : decodeEncodedCommand(image, cmd);
  const parts: string[] = [];
  if (hosted !== undefined) parts.push(hosted);
  if (decoded !== undefined) parts.push(`decoded -EncodedCommand: ${decoded.join(' ⟶ decoded: ').slice(0, 4096)}`);
  return parts.length === 0 ? undefined : parts.join('; ');
}

/**
 * The process that ran `path` by its command line: the latest start, at or
 * before the detection, of a script host or loader whose command line names
 * the file (relative names resolved against the host's current directory).
 */
function findHost(state: DeviceState, path: string, detectedAt: number): { node: ProcNode; target: string; how: string } | undefined {
  const name = basename(path);
  // Browser caches name a download "x[1].ext": its URL says "x.ext".
  const stem = name.replace(/\.[^.]*$/, '').replace(/\[\d+\]$/, '');
  if (stem === '') return undefined;
  let best: { node: ProcNode; target: string; how: string } | undefined;
  let bestTs = Number.NEGATIVE_INFINITY;
  const candidates: { node: ProcNode; target: string; how: string; ts: number }[] = [];
  for (const p of state.procs.values()) {
    // A process that started before the log began is known by its command line from a child's start event.
    const ts = p.start?.ts ?? p.lastTs;
    if (ts > detectedAt || p.cmd === '') continue;
    // Cheap filter first: the command line must contain the file's name (an extension may be implied: rundll32 x,Entry).
    if (!p.cmd.toLowerCase().includes(stem)) continue;
    const t = hostedTargets(p.image, p.cmd, p.cwd).find((x) => targetNames(x.path, path));
    if (t !== undefined) candidates.push({ node: p, target: t.path, how: t.how, ts });
  }
  // A host started by another host of the same file (rundll32 relaunching itself) is part of that run: the root-most run wins, then the latest.
  const pgs = new Set(candidates.map((c) => foldKey(c.node.pg)));
  for (const c of candidates) {
    let up = state.proc(c.node.ppg);
    let nested = false;
    for (let i = 0; up !== undefined && i < 16 && !nested; i++, up = state.proc(up.ppg)) nested = pgs.has(foldKey(up.pg));
    if (!nested && c.ts >= bestTs) {
      best = { node: c.node, target: c.target, how: c.how };
      bestTs = c.ts;
    }
  }
  return best;
}

/** Why an image load is worth listing, or undefined: the detected file, unsigned or from a user-writable folder, side-loading, or a telling DLL. */
function imageLoadNote(e: TrailEvent, state: DeviceState, detectedPath: string): string | undefined {
  const p = str(e.path);
  if (p === undefined) return undefined;
  const loader = state.proc(str(e.pg));
  const sig = str(e.sig);
  const writable = isUserWritablePath(p);
  // A process's own image: its start already says so.
  if (loader !== undefined && foldKey(loader.image) === foldKey(p)) return undefined;
  if (foldKey(p) === foldKey(detectedPath)) return `the detected file loaded as an image${sig === undefined ? '' : ` (${sig})`}`;
  if (sig !== undefined && sig !== 'trusted' && writable) {
    const loaderSigned = loader?.sig === 'trusted' || (loader?.signer !== undefined && loader.signer !== '');
    if (loaderSigned) return `side-loading: ${sig} DLL from a user-writable folder loaded by the signed ${basename(loader?.image ?? '')}`;
    return `${sig} DLL from a user-writable folder`;
  }
  if (writable) return 'loaded from a user-writable folder';
  if (sig !== undefined && sig !== 'trusted') return `${sig} DLL`;
  if (NOTABLE_DLLS.has(basename(p))) return `${basename(p)} loaded`;
  return undefined;
}


/** The process GUIDs whose later events revise a report: the detected process and its descendants. */
export function reportProcessSet(report: QuickReport): Set<string> {
  const set = new Set<string>();
  const chainLast = report.sections.find((s) => s.id === 'chain')?.items.at(-1);
  if (report.executed && chainLast !== undefined && typeof chainLast.event.pg === 'string') set.add(foldKey(chainLast.event.pg));
  for (const it of report.sections.find((s) => s.id === 'descendants')?.items ?? []) {
    if (typeof it.event.pg === 'string') set.add(foldKey(it.event.pg));
  }
  return set;
}

/** A fingerprint of what a revision shows: a new revision is kept only when it changes. */
export function reportFingerprint(report: QuickReport): string {
  return `${report.verdict}|${report.score}|${report.rules.map((r) => r.ruleId).join(',')}|${(report.sigma ?? []).map((h) => h.detectionId).join(',')}|${report.sections.map((s) => s.items.length).join(',')}`;
}
