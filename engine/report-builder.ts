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
import { foldKey, type DeviceState, type EventRef, type ProcNode } from './device-state.js';
import { judge, type CompiledRuleSet } from './rules/evaluate.js';
import type { ThreatIntel } from './intel/index.js';

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
};

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

  // The detected process: the one the antivirus names, if it runs the file; else the latest run of that image.
  let detected: ProcNode | undefined = state.proc(str(detection.pg));
  if (detected !== undefined && path !== '' && foldKey(detected.image) !== foldKey(path)) detected = undefined;
  if (detected === undefined && path !== '') {
    const candidate = state.latestProcessOfImage(path);
    if (candidate !== undefined && (candidate.start?.ts ?? 0) <= detectedAt) detected = candidate;
  }
  const executed = detected !== undefined && detected.start !== undefined;

  // 1. Origin.
  const fileOrigin = state.file(path);
  const originItems: EvidenceItem[] = [];
  let originKind = 'unknown';
  let originSummary = 'No record of how the file was created.';
  let creator: ProcNode | undefined;
  if (fileOrigin !== undefined) {
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
    else if (creator !== undefined) originKind = 'local';
    const by = creator?.image ? basename(creator.image) : 'an unknown process';
    originSummary =
      originKind === 'internet'
        ? `Downloaded by ${by}${fileOrigin.originUrl ? ` from ${fileOrigin.originUrl}` : ' (Mark of the Web)'}.`
        : originKind === 'mail'
          ? `Saved by the mail client ${by}.`
          : originKind === 'removable'
            ? `Came from a removable volume (${path.slice(0, 2)}).`
            : originKind === 'script'
              ? `Written by ${by}, a script host or LOLBin.`
              : `Created by ${by}.`;
  } else if (/^[a-z]:/i.test(path) && state.removableDrives.has(path.slice(0, 2).toUpperCase())) {
    originKind = 'removable';
    originSummary = `On a removable volume (${path.slice(0, 2)}).`;
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
      if (start !== undefined) chainItems.push(item(start));
      else if (child !== undefined) {
        // Known only from the parent fields copied into its child's start event.
        const childStart = fetch(child.start);
        if (childStart !== undefined) chainItems.push({ ...item(childStart, 'parent known from this start event only'), event: { k: 'proc.start', pg: p.pg, image: p.image, cmd: p.cmd } });
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
    if (start !== undefined) descendantItems.push(item(start));
  }
  descendantItems.sort((a, b) => a.ref.seq - b.ref.seq);

  // 4-7. Activity of the detected process and its descendants, read from the log.
  const pgSet = new Set<string>();
  const lsns = new Set<number>();
  for (const node of detected === undefined ? tree : [detected, ...tree]) {
    pgSet.add(foldKey(node.pg));
    for (const l of node.lsns) lsns.add(l);
  }
  const written: EvidenceItem[] = [];
  const registry: EvidenceItem[] = [];
  const read: EvidenceItem[] = [];
  const network: EvidenceItem[] = [];
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
        case 'file.delete':
        case 'file.rename':
          push(written, item(e));
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

  // 8. Attributes.
  const attributes: FileAttributes = {
    path,
    sha256: sha256 ?? fileOrigin?.sha256 ?? detected?.sha256,
    size: fileOrigin?.size,
    signer: detected?.signer ?? str(detection.signer),
    sig: detected?.sig ?? str(detection.sig),
    firstSeen: fileOrigin?.firstSeen ?? detected?.start?.ts,
    vol: fileOrigin?.vol,
  };
  const attributeItems: EvidenceItem[] = [{ ...item(detection, 'the detection'), event: { ...(detection as Record<string, unknown>), ...attributes } }];

  const sections: ReportSection[] = [
    { id: 'origin', title: SECTION_TITLES.origin, summary: originSummary, items: originItems },
    {
      id: 'chain',
      title: SECTION_TITLES.chain,
      summary: executed ? chainNames.join(' → ') : 'The file did not run (no process start recorded).',
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
  ];
  // The origin's evidence also counts for rules on the origin URL.
  const originForRules = originItems.map((it) => (it.note === 'created the detected file' ? { ...it, event: { ...it.event, originUrl: fileOrigin?.originUrl } } : it));
  const judgement = judge(ctx.rules, {
    sections: sections.map((s) => (s.id === 'origin' ? { ...s, items: originForRules } : s)),
    facts: { originKind, executed, action: str(detection.action) ?? 'unknown' },
    intel: ctx.intel,
    dnsNames: state.dns,
  });

  // Rules that fired: Sigma detections on any process of the tree (chain, the detected process, descendants)
  // from the look-back to now. The verdict does not weigh them yet (the verdict model's own issue).
  let sigma: SigmaReportHit[] | undefined;
  if (ctx.sigmaHits !== undefined) {
    const tree = new Set<string>();
    for (const s of sections) {
      if (s.id !== 'chain' && s.id !== 'descendants') continue;
      for (const it of s.items) if (typeof it.event.pg === 'string') tree.add(foldKey(it.event.pg));
    }
    if (typeof detection.pg === 'string') tree.add(foldKey(detection.pg));
    sigma = ctx.sigmaHits(tree, detection.ts - LOOK_BACK_MS, Number.MAX_SAFE_INTEGER);
  }

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
    rules: judgement.hits,
    ...(sigma === undefined ? {} : { sigma }),
    score: judgement.score,
    verdict: judgement.verdict,
  };
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
