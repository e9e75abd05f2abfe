/**
 * Per-device state a shard keeps to explain a detection quickly: the process
 * table (keyed by process GUID) with parent links and the log positions where
 * each process has events, and file provenance (which process created or
 * wrote each path, from where). Memory is bounded per device: ended processes
 * and old files are evicted first. The raw batch log stays the source of the
 * events themselves; a report reads only those within 7 days before the
 * detection (report-builder.ts, LOOK_BACK_MS).
 */
import type { TrailEvent } from '../core/contracts.js';
import { internString } from '../core/intern.js';

/** Where an event sits: the batch (lsn) and the event's seq and time. */
export interface EventRef {
  lsn: number;
  seq: number;
  ts: number;
}

export interface ProcNode {
  pg: string;
  image: string;
  cmd: string;
  sha256: string | undefined;
  signer: string | undefined;
  sig: string | undefined;
  ppg: string | undefined;
  pimage: string | undefined;
  pcmd: string | undefined;
  user: string | undefined;
  pid: number | undefined;
  /** Current directory at start: relative paths on its command line resolve against it. */
  cwd?: string;
  start: EventRef | undefined;
  end: EventRef | undefined;
  /** Child process GUIDs. */
  children: string[];
  /** Distinct batches (lsn, ascending) holding events of this process. */
  lsns: number[];
  lastTs: number;
}

export interface FileOrigin {
  path: string;
  /** Process that created or last wrote the file. */
  pg: string | undefined;
  created: EventRef | undefined;
  lastWrite: EventRef | undefined;
  sha256: string | undefined;
  size: number | undefined;
  vol: string | undefined;
  originUrl: string | undefined;
  referrerUrl: string | undefined;
  zone: number | undefined;
  firstSeen: number;
  /** The process that last loaded the file as an image (DLL), and that load. */
  loadedBy?: string;
  loaded?: EventRef;
  /** The deletion of its Zone.Identifier stream (Mark of the Web removed): evidence it came from the internet. */
  motwDeleted?: EventRef;
}

export interface DeviceStateLimits {
  maxProcesses: number;
  maxFiles: number;
  /** Batch refs kept per process; the oldest are dropped beyond this. */
  maxLsnsPerProcess: number;
}

/**
 * Per-device caps. Snapshots of this state are written every few seconds, so
 * its size is CPU and write-lock time: the load benchmark showed 4,096 / 256
 * making snapshot encoding a quarter of a shard's time.
 */
export const DEFAULT_DEVICE_LIMITS: DeviceStateLimits = { maxProcesses: 256, maxFiles: 512, maxLsnsPerProcess: 16 };

/** Serializable form, written to LMDB as the shard's state snapshot. */
export interface DeviceSnapshot {
  procs: ProcNode[];
  files: FileOrigin[];
  dns: [string, string][];
  removableDrives: string[];
  /** Device-wide persistence events (service installs, scheduled tasks); absent in older snapshots. */
  persistence?: EventRef[];
  remoteLogons?: EventRef[];
}

/** Extension kinds from the Security / System fallbacks that install persistence device-wide (no acting process). */
export const PERSISTENCE_KINDS: ReadonlySet<string> = new Set(['service.install', 'service.config', 'task.create']);
const MAX_PERSISTENCE = 64;

/**
 * Folders only Windows or an administrator's installer writes: a DLL loaded
 * from anywhere else is remembered (it may be a payload or a side-load), one
 * from here is not (every process loads hundreds).
 */
const SYSTEM_FOLDER = /^[a-z]:\\(windows\\(system32|syswow64|winsxs|microsoft\.net|assembly|systemapps|servicing)\\|program files( \(x86\))?\\)/i;

/** True for paths outside the folders only Windows or installers write (user profiles, ProgramData, temp, roots of drives, shares). */
export function isUserWritablePath(path: string): boolean {
  if (path.startsWith('\\\\')) return true;
  if (!/^[a-z]:\\/i.test(path)) return false;
  return !SYSTEM_FOLDER.test(path) && !/^[a-z]:\\windows\\[^\\]+$/i.test(path);
}

/** Lower-case key for Windows paths and GUIDs: they keep their case but compare case-insensitively. */
export function foldKey(s: string): string {
  return s.toLowerCase();
}

/** Strings kept in the state are interned copies (core/intern.ts says why). */
const own = internString;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? own(v) : undefined;
}

/** `v` as an owned string when it is a non-empty string that differs from `prev`; `prev` otherwise (no interning when unchanged). */
function keep(prev: string | undefined, v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length === 0 || v === prev) return prev;
  return own(v);
}

/** The program of a command line (its first argument, quotes removed). */
function firstArg(cmd: string): string {
  const t = cmd.trim();
  if (t.startsWith('"')) return t.slice(1, t.indexOf('"', 1) < 0 ? undefined : t.indexOf('"', 1));
  const sp = t.search(/\s/);
  return sp < 0 ? t : t.slice(0, sp);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

const MAX_DNS = 1024;

/** What an absent collection reads as: most devices of an idle fleet never fill theirs. */
const NO_FILES: ReadonlyMap<string, FileOrigin> = new Map();
const NO_DNS: ReadonlyMap<string, string> = new Map();
const NO_DRIVES: ReadonlySet<string> = new Set();

/**
 * Approximate heap bytes of a device's state, for the shard's budget
 * (correlator.ts): measured with `--expose-gc` on states of unique strings
 * (an empty state 330 B, one started process and its parent 1.1 KB, 256
 * processes 153 KB, 512 files about 140 KB more), rounded up.
 */
const STATE_BASE_BYTES = 600;
const PROC_BYTES = 720;
const FILE_BYTES = 300;
const DNS_BYTES = 120;
const REF_BYTES = 60;

export class DeviceState {
  readonly procs = new Map<string, ProcNode>();
  // Files, DNS names and drives are made on first use: an empty Map or Set costs about 170 bytes, and an idle
  // device's state was 860 bytes before its first event (fanin-19k keeps 19,000 of them).
  private fileMap: Map<string, FileOrigin> | undefined;
  private dnsMap: Map<string, string> | undefined;
  private driveSet: Set<string> | undefined;
  /** Device-wide persistence events (PERSISTENCE_KINDS), newest last, bounded. */
  readonly persistence: EventRef[] = [];
  /** Successful network and remote-interactive logons (types 3, 10), newest last, bounded: who could have acted remotely. */
  readonly remoteLogons: EventRef[] = [];
  private readonly limits: DeviceStateLimits;

  constructor(limits: DeviceStateLimits = DEFAULT_DEVICE_LIMITS, snapshot?: DeviceSnapshot) {
    this.limits = limits;
    if (snapshot !== undefined) {
      for (const p of snapshot.procs) this.procs.set(foldKey(p.pg), p);
      for (const f of snapshot.files) this.writableFiles().set(foldKey(f.path), f);
      for (const [ip, name] of snapshot.dns) this.writableDns().set(ip, name);
      for (const d of snapshot.removableDrives) this.writableDrives().add(d);
      for (const r of snapshot.persistence ?? []) this.persistence.push(r);
      for (const r of snapshot.remoteLogons ?? []) this.remoteLogons.push(r);
    }
  }

  /** File provenance by folded path. */
  get files(): ReadonlyMap<string, FileOrigin> {
    return this.fileMap ?? NO_FILES;
  }

  /** Resolved IP → name, from net.dns answers. */
  get dns(): ReadonlyMap<string, string> {
    return this.dnsMap ?? NO_DNS;
  }

  /** Drive letters (e.g. "E:") of connected removable devices. */
  get removableDrives(): ReadonlySet<string> {
    return this.driveSet ?? NO_DRIVES;
  }

  private writableFiles(): Map<string, FileOrigin> {
    return (this.fileMap ??= new Map());
  }

  private writableDns(): Map<string, string> {
    return (this.dnsMap ??= new Map());
  }

  private writableDrives(): Set<string> {
    return (this.driveSet ??= new Set());
  }

  /** Approximate heap bytes of this state (the shard's memory budget; constants above). */
  approxBytes(): number {
    return (
      STATE_BASE_BYTES +
      this.procs.size * PROC_BYTES +
      (this.fileMap?.size ?? 0) * FILE_BYTES +
      (this.dnsMap?.size ?? 0) * DNS_BYTES +
      (this.persistence.length + this.remoteLogons.length) * REF_BYTES
    );
  }

  snapshot(): DeviceSnapshot {
    return {
      procs: [...this.procs.values()],
      files: [...this.files.values()],
      dns: [...this.dns],
      removableDrives: [...this.removableDrives],
      ...(this.persistence.length === 0 ? {} : { persistence: [...this.persistence] }),
      ...(this.remoteLogons.length === 0 ? {} : { remoteLogons: [...this.remoteLogons] }),
    };
  }

  proc(pg: string | undefined): ProcNode | undefined {
    // GUIDs usually arrive in the case they are stored in: skip the fold when the exact key hits.
    return pg === undefined ? undefined : (this.procs.get(pg) ?? this.procs.get(foldKey(pg)));
  }

  file(path: string | undefined): FileOrigin | undefined {
    return path === undefined ? undefined : this.files.get(foldKey(path));
  }

  /** The most recent process whose image is `path`. */
  latestProcessOfImage(path: string): ProcNode | undefined {
    const want = foldKey(path);
    let best: ProcNode | undefined;
    for (const p of this.procs.values()) {
      if (foldKey(p.image) === want && (best === undefined || (p.start?.ts ?? 0) >= (best.start?.ts ?? 0))) best = p;
    }
    return best;
  }

  /** The process `pg`, created on first sight; `image` is the acting image an event names (Sysmon writes it on every kind). */
  private touchProc(pg: string, lsn: number, ts: number, image?: unknown): ProcNode {
    let p = this.procs.get(pg);
    const key = p === undefined ? foldKey(pg) : pg;
    if (p === undefined) p = this.procs.get(key);
    if (p === undefined) {
      p = {
        pg: own(pg),
        image: '',
        cmd: '',
        sha256: undefined,
        signer: undefined,
        sig: undefined,
        ppg: undefined,
        pimage: undefined,
        pcmd: undefined,
        user: undefined,
        pid: undefined,
        start: undefined,
        end: undefined,
        children: [],
        // A literal of one, not a push onto []: a push makes room for 17 (V8 grows by half plus 16), and most
        // processes of an idle device never get a second batch.
        lsns: lsn > 0 ? [lsn] : [],
        lastTs: ts,
      };
      this.procs.set(own(key), p);
      if (this.procs.size > this.limits.maxProcesses) this.evictProcess();
    } else if ((p.lsns[p.lsns.length - 1] ?? 0) < lsn) {
      // Only forward: replaying a batch already folded into a snapshot must change nothing.
      p.lsns.push(lsn);
      if (p.lsns.length > this.limits.maxLsnsPerProcess) p.lsns.shift();
    }
    if (ts > p.lastTs) p.lastTs = ts;
    // Known by its own events only (it started before the log began): its image is still known.
    if (p.image === '' && typeof image === 'string' && image.length > 0) p.image = own(image);
    return p;
  }

  /** Evicts the process idle longest, preferring ended ones: running processes anchor chains. */
  private evictProcess(): void {
    let victim: string | undefined;
    let victimTs = Number.POSITIVE_INFINITY;
    let victimEnded = false;
    for (const [key, p] of this.procs) {
      const ended = p.end !== undefined;
      if ((ended && !victimEnded) || (ended === victimEnded && p.lastTs < victimTs)) {
        victim = key;
        victimTs = p.lastTs;
        victimEnded = ended;
      }
    }
    if (victim !== undefined) this.procs.delete(victim);
  }

  private evictFile(): void {
    // Maps iterate in insertion order; re-inserted on write, so the first is the least recently touched.
    const files = this.writableFiles();
    const first = files.keys().next();
    if (!first.done) files.delete(first.value);
  }

  private touchFile(path: string, ts: number): FileOrigin {
    const files = this.writableFiles();
    let key = foldKey(path);
    let f = files.get(key);
    if (f === undefined) {
      key = own(key);
      f = {
        path: own(path),
        pg: undefined,
        created: undefined,
        lastWrite: undefined,
        sha256: undefined,
        size: undefined,
        vol: undefined,
        originUrl: undefined,
        referrerUrl: undefined,
        zone: undefined,
        firstSeen: ts,
      };
    } else {
      // Re-inserted to move it to the LRU end, under the interned key (a fresh fold may be a slice).
      files.delete(key);
      key = own(key);
    }
    files.set(key, f);
    if (files.size > this.limits.maxFiles) this.evictFile();
    return f;
  }

  /** Folds one event into the state. `lsn` is the batch it came in. */
  apply(e: TrailEvent, lsn: number): void {
    const ts = typeof e.ts === 'number' ? e.ts : 0;
    const ref: EventRef = { lsn, seq: e.seq, ts };
    const pg = typeof e.pg === 'string' && e.pg.length > 0 ? e.pg : undefined;
    switch (e.k) {
      case 'proc.start': {
        if (pg === undefined) return;
        const p = this.touchProc(pg, lsn, ts, e.image);
        p.image = keep(p.image, e.image) ?? p.image;
        p.cmd = keep(p.cmd, e.cmd) ?? p.cmd;
        p.sha256 = keep(p.sha256, e.sha256);
        p.signer = keep(p.signer, e.signer);
        p.sig = keep(p.sig, e.sig);
        p.ppg = keep(p.ppg, e.ppg);
        p.pimage = keep(p.pimage, e.pimage);
        p.pcmd = keep(p.pcmd, e.pcmd);
        p.user = keep(p.user, e.user);
        p.pid = num(e.pid) ?? p.pid;
        const cwd = keep(p.cwd, e.cwd);
        if (cwd !== undefined) p.cwd = cwd;
        p.start = ref;
        if (p.ppg !== undefined) {
          const parent = this.touchProc(p.ppg, lsn, ts);
          // Parent fields are copied into every start event, so a chain survives a missing parent event
          // (some exports name the parent only by its command line).
          if (parent.image === '') parent.image = p.pimage ?? (p.pcmd === undefined ? '' : own(firstArg(p.pcmd)));
          if (parent.cmd === '' && p.pcmd !== undefined) parent.cmd = p.pcmd;
          if (parent.children.length === 0) parent.children = [p.pg];
          else if (!parent.children.includes(p.pg)) parent.children.push(p.pg);
        }
        return;
      }
      case 'proc.end': {
        if (pg === undefined) return;
        this.touchProc(pg, lsn, ts, e.image).end = ref;
        return;
      }
      case 'file.create':
      case 'file.write': {
        const path = typeof e.path === 'string' && e.path.length > 0 ? e.path : undefined;
        if (pg !== undefined) this.touchProc(pg, lsn, ts, e.image);
        if (path === undefined) return;
        const f = this.touchFile(path, ts);
        if (e.k === 'file.create') {
          f.created = ref;
          f.pg = pg === undefined ? f.pg : own(pg);
        } else {
          f.lastWrite = ref;
          f.pg ??= pg === undefined ? undefined : own(pg);
        }
        f.sha256 = keep(f.sha256, e.sha256);
        f.size = num(e.size) ?? f.size;
        f.vol = keep(f.vol, e.vol);
        f.originUrl = keep(f.originUrl, e.originUrl);
        f.referrerUrl = keep(f.referrerUrl, e.referrerUrl);
        f.zone = num(e.zone) ?? f.zone;
        return;
      }
      case 'file.rename': {
        if (pg !== undefined) this.touchProc(pg, lsn, ts, e.image);
        const from = typeof e.path === 'string' && e.path.length > 0 ? e.path : undefined;
        const to = typeof e.newPath === 'string' && e.newPath.length > 0 ? e.newPath : undefined;
        if (from === undefined || to === undefined) return;
        const old = this.files.get(foldKey(from));
        const f = this.touchFile(to, ts);
        if (old !== undefined) Object.assign(f, { ...old, path: to });
        f.lastWrite = ref;
        f.pg ??= pg === undefined ? undefined : own(pg);
        return;
      }
      case 'net.dns': {
        if (pg !== undefined) this.touchProc(pg, lsn, ts, e.image);
        const qname = str(e.qname);
        const answers = e.answers;
        if (qname === undefined || !Array.isArray(answers)) return;
        for (const a of answers) {
          if (typeof a !== 'string') continue;
          const dns = this.writableDns();
          dns.delete(a);
          dns.set(own(a), qname);
          if (dns.size > MAX_DNS) dns.delete(dns.keys().next().value!);
        }
        return;
      }
      case 'file.delete': {
        if (pg !== undefined) this.touchProc(pg, lsn, ts, e.image);
        const path = typeof e.path === 'string' ? e.path : '';
        const motw = /:Zone\.Identifier(:\$DATA)?$/i.exec(path);
        // Deleting the Mark of the Web (Unblock-File, streams -d) is evidence the file came from the internet.
        if (motw !== null && motw.index > 0) this.touchFile(path.slice(0, motw.index), ts).motwDeleted = ref;
        return;
      }
      case 'image.load': {
        if (pg === undefined) return;
        const p = this.touchProc(pg, lsn, ts, e.image);
        const path = typeof e.path === 'string' && e.path.length > 0 ? e.path : undefined;
        if (path === undefined) return;
        // A process's own image load carries the signature its start event lacks (Sysmon 1 has none).
        if (p.signer === undefined && p.sig === undefined && p.image !== '' && foldKey(p.image) === foldKey(path)) {
          p.signer = str(e.signer);
          p.sig = str(e.sig);
          return;
        }
        if (e.sig !== 'trusted' || isUserWritablePath(path)) {
          const f = this.touchFile(path, ts);
          f.loadedBy = p.pg;
          f.loaded = ref;
          f.sha256 = keep(f.sha256, e.sha256);
        }
        return;
      }
      case 'usb.connect':
      case 'usb.disconnect': {
        const drive = str(e.drive);
        if (drive === undefined) return;
        const letter = drive.slice(0, 2).toUpperCase();
        if (e.k === 'usb.connect') this.writableDrives().add(letter);
        else this.driveSet?.delete(letter);
        return;
      }
      case 'logon': {
        // Machine accounts (NAME$) log on over the network all the time; a person's network logon with a source address is what a remote actor leaves.
        if (e.ok !== false && (e.logonType === 3 || e.logonType === 10) && typeof e.srcIp === 'string' && !(typeof e.userName === 'string' && e.userName.endsWith('$'))) {
          this.remoteLogons.push(ref);
          if (this.remoteLogons.length > MAX_PERSISTENCE) this.remoteLogons.shift();
        }
        return;
      }
      default:
        if (PERSISTENCE_KINDS.has(e.k)) {
          this.persistence.push(ref);
          if (this.persistence.length > MAX_PERSISTENCE) this.persistence.shift();
        }
        // Every other kind with an acting process is indexed by its batch for the report's sections.
        if (pg !== undefined) this.touchProc(pg, lsn, ts, e.image);
    }
  }
}
