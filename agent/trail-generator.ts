/**
 * Seeded generator of realistic Windows trail events (SPEC §2) for the load
 * simulator and for fixtures. One generator models one PC: long-lived system
 * processes (System, services.exe, svchost.exe, lsass.exe, MsMpEng.exe,
 * explorer.exe), user applications started from explorer.exe (browsers, Office,
 * cmd.exe, powershell.exe, …) with their children, and what they do: file,
 * registry, network and DNS activity, USB devices and logon sessions. Now and
 * then (`detectRate`) it plays a detection chain: a browser resolves a bad
 * host, downloads a file with Mark of the Web, the user runs it, it persists
 * and calls home, and the antivirus reports it (`av.detect`).
 *
 * Output is a pure function of the options and the arguments of `next()`
 * (mulberry32, never Math.random). Strings come from catalogues compiled once
 * per user name and shared by all generators, so a generator itself holds only
 * its process table and a short queue of pending events: thousands of them fit
 * in one simulator process, and producing an event costs much less than
 * MessagePack-encoding it (a loop of `next(1000, …)` calls is the way to measure).
 */
import type { TrailEvent } from '../core/contracts.js';

/** Authenticode state of an image (SPEC §2 `sig`). */
export type SignatureStatus = 'trusted' | 'untrusted' | 'unsigned';

/** Options of {@link createTrailGenerator}. */
export interface TrailGeneratorOptions {
  /** PRNG seed (any integer; only its low 32 bits are used). */
  seed: number;
  /** Computer name of the simulated PC. */
  computer: string;
  /** SID of the interactive user; default derived from `seed` and `computer`. */
  userSid?: string;
  /** Account name of the interactive user; default picked from a pool by `computer`. */
  userName?: string;
  /** Logon domain of the interactive user; default `CORP`. */
  domain?: string;
  /** IPv4 address of the PC, used as `lip`; default derived from `computer`. */
  ip?: string;
  /**
   * Probability, per generated event, that a detection chain starts
   * (download → execution → `av.detect`). Default 1/20,000. 0 disables it.
   */
  detectRate?: number;
}

/** A process known to the generator (for tests and callers that seed a process tree). */
export interface GeneratedProcess {
  /** Process GUID, Sysmon style `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`. */
  pg: string;
  pid: number;
  image: string;
  cmd: string;
  /** SID the process runs as. */
  user: string;
}

/** A seeded source of trail events for one PC. */
export interface TrailGenerator {
  /**
   * Produces the next `count` events. Event *i* carries `seq = firstSeq + i`;
   * timestamps (ms since epoch) are non-decreasing, spread over the interval
   * from the previous call's `nowMs` (or `count` × 50 ms back on the first
   * call) up to `nowMs`, and never go back even if `nowMs` does.
   */
  next(count: number, firstSeq: number, nowMs: number): TrailEvent[];
  /** Long-lived processes that exist before the first event (no `proc.start` is emitted for them). */
  readonly roots: readonly GeneratedProcess[];
  /** Number of `av.detect` events produced so far. */
  readonly detections: number;
  /** SID of the interactive user. */
  readonly userSid: string;
  /** Account name of the interactive user. */
  readonly userName: string;
}

// ---------------------------------------------------------------------------
// PRNG and hashing
// ---------------------------------------------------------------------------

/** mulberry32: a 32-bit seeded PRNG returning floats in [0, 1). */
export function createPrng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a 32-bit hash of a string, mixed with `salt`; used to derive stable per-name values. */
export function hashString(text: string, salt = 0): number {
  let h = (0x811c9dc5 ^ salt) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const HEX_BYTE: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex32(n: number): string {
  return (
    (HEX_BYTE[(n >>> 24) & 255] as string) +
    (HEX_BYTE[(n >>> 16) & 255] as string) +
    (HEX_BYTE[(n >>> 8) & 255] as string) +
    (HEX_BYTE[n & 255] as string)
  );
}

function hex16(n: number): string {
  return (HEX_BYTE[(n >>> 8) & 255] as string) + (HEX_BYTE[n & 255] as string);
}

function randU32(rng: () => number): number {
  return (rng() * 4294967296) >>> 0;
}

/** 64 lowercase hex characters drawn from `rng` (a SHA-256 look-alike). */
function randomSha(rng: () => number): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += hex32(randU32(rng));
  return s;
}

/** A stable SHA-256 look-alike for a name (same binary → same hash on every PC). */
function stableSha(name: string): string {
  return randomSha(createPrng(hashString(name, 0x5a17)));
}

/** A pool of stable hashes for written files: picking is cheaper than building 64 hex per event. */
const SHA_POOL: readonly string[] = (() => {
  const rng = createPrng(0xc0ffee);
  return Array.from({ length: 2048 }, () => randomSha(rng));
})();

function pick<T>(rng: () => number, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)] as T;
}

function between(rng: () => number, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

/** Expands `[item, weight]` pairs into an array where picking uniformly honours the weights. */
function weighted<T>(pairs: ReadonlyArray<readonly [T, number]>): T[] {
  const out: T[] = [];
  for (const [item, weight] of pairs) for (let i = 0; i < weight; i++) out.push(item);
  return out;
}

function ipFromHash(h: number, firstOctets: readonly number[]): string {
  const a = firstOctets[h % firstOctets.length] as number;
  return `${a}.${(h >>> 8) & 255}.${(h >>> 16) & 255}.${1 + ((h >>> 24) % 254)}`;
}

// ---------------------------------------------------------------------------
// Catalogue: images, files, registry values, hosts
// ---------------------------------------------------------------------------

type Act =
  | 'read'
  | 'write'
  | 'create'
  | 'delete'
  | 'rename'
  | 'regSet'
  | 'regCreate'
  | 'regDelete'
  | 'net'
  | 'netIn'
  | 'dns'
  | 'download'
  | 'child';

type Account = 'user' | 'system' | 'local' | 'network';

interface HostSpec {
  readonly name: string;
  readonly port: number;
  readonly proto: 'tcp' | 'udp';
}

interface ImageSpec {
  readonly id: string;
  /** Image path; `%U` is the user profile directory. */
  readonly image: string;
  /** Command-line variants; `%U` user profile, `%I` image path. */
  readonly cmds: readonly string[];
  readonly cwd: string;
  readonly signer: string;
  readonly sig: SignatureStatus;
  readonly integrity: 'System' | 'High' | 'Medium' | 'Low';
  readonly account: Account;
  /** Activity events before the process exits: [min, max]. */
  readonly budget: readonly [number, number];
  readonly acts: ReadonlyArray<readonly [Act, number]>;
  readonly reads?: readonly string[];
  readonly writes?: readonly string[];
  readonly creates?: readonly string[];
  /** Registry values: `key|value|dtype|data`; `%S` in the key is the user SID (`HKU\%S\…` is the user hive). */
  readonly regs?: readonly string[];
  readonly hosts?: readonly HostSpec[];
  readonly children?: ReadonlyArray<readonly [string, number]>;
  /** At most one live instance. */
  readonly single?: boolean;
}

const SYS32 = 'C:\\Windows\\System32';
const CHROME = 'C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe';
const EDGE = 'C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe';
const OFFICE = 'C:\\Program Files\\Microsoft Office\\root\\Office16';
const CHROME_DATA = '%U\\AppData\\Local\\Google\\Chrome\\User Data\\Default';
const EDGE_DATA = '%U\\AppData\\Local\\Microsoft\\Edge\\User Data\\Default';
const FILE_SERVER = '\\\\fs01.corp.example\\share';

const DOCS = [
  '見積書_2024Q3',
  '議事録_定例会',
  'report-weekly',
  '提案書_ドラフト',
  'budget_plan',
  'customer_list',
  '手順書_v2',
  'invoice_summary',
];

const CACHE_FILES = Array.from({ length: 48 }, (_, i) => `f_${(0x3a10 + i * 37).toString(16).padStart(6, '0')}`);

const WEB_HOSTS: readonly HostSpec[] = [
  'www.google.com',
  'www.youtube.com',
  'fonts.gstatic.com',
  'www.yahoo.co.jp',
  'github.com',
  'login.microsoftonline.com',
  'www.nikkei.com',
  'ajax.googleapis.com',
  'cdn.jsdelivr.net',
  'www.amazon.co.jp',
  'ssl.gstatic.com',
  'update.googleapis.com',
  'clients2.google.com',
].map((name) => ({ name, port: 443, proto: 'tcp' as const }));

const OFFICE_HOSTS: readonly HostSpec[] = [
  'outlook.office365.com',
  'officeclient.microsoft.com',
  'nexus.officeapps.live.com',
  'roaming.officeapps.live.com',
  'config.office.com',
].map((name) => ({ name, port: 443, proto: 'tcp' as const }));

const WINDOWS_HOSTS: readonly HostSpec[] = [
  'settings-win.data.microsoft.com',
  'ctldl.windowsupdate.com',
  'v10.events.data.microsoft.com',
  'login.live.com',
  'fe3cr.delivery.mp.microsoft.com',
  'time.windows.com',
  'wdcp.microsoft.com',
].map((name) => ({ name, port: name.startsWith('time.') ? 123 : 443, proto: name.startsWith('time.') ? ('udp' as const) : ('tcp' as const) }));

const LAN_HOSTS: readonly HostSpec[] = [
  { name: 'fs01.corp.example', port: 445, proto: 'tcp' },
  { name: 'dc01.corp.example', port: 389, proto: 'tcp' },
  { name: 'dc01.corp.example', port: 88, proto: 'tcp' },
  { name: 'proxy.corp.example', port: 8080, proto: 'tcp' },
];

const DOWNLOAD_NAMES = [
  'GoogleChromeStandaloneEnterprise64.msi',
  '会議資料.pdf',
  'product_catalog_2024.pdf',
  'ZoomInstallerFull.exe',
  'price_list.xlsx',
  'specification.docx',
  'photos.zip',
  'npp.8.6.Installer.x64.exe',
];

const DOWNLOAD_HOSTS = [
  'https://dl.google.com/edgedl/chrome/install/',
  'https://www.corp-partner.example/files/',
  'https://zoom.us/client/latest/',
  'https://github.com/notepad-plus-plus/notepad-plus-plus/releases/download/v8.6/',
  'https://drive.usercontent.google.com/download/',
];

const BAD_HOSTS = [
  'cdn-docs-share.xyz',
  'invoice-portal-jp.top',
  'secure-update-center.info',
  'files-transfer-cloud.click',
  'microsoft-verify-login.site',
  'mega-dl-free.online',
];

const BAD_FILES = [
  'Invoice_2024_0312.exe',
  '請求書_0415.pdf.exe',
  'Scan_00482.scr',
  'setup_patch_v2.exe',
  'DHL_Delivery_Notice.exe',
  'payment_advice.exe',
  'AdobeReader_update.exe',
];

const THREATS = [
  'Trojan:Win32/Wacatac.B!ml',
  'Trojan:Win32/AgentTesla!ml',
  'Backdoor:Win32/CobaltStrike.C!dha',
  'Trojan:Win32/Emotet.PVD!MTB',
  'Ransom:Win32/LockBit.AB!MTB',
  'TrojanDownloader:Win32/Qakbot.SA',
  'PUA:Win32/Presenoker',
  'Trojan:Win32/Formbook.RPX!MTB',
];

const IMAGES: readonly ImageSpec[] = [
  // --- long-lived roots -------------------------------------------------------
  {
    id: 'system',
    image: 'System',
    cmds: [''],
    cwd: '',
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'System',
    account: 'system',
    budget: [0, 0],
    acts: [
      ['write', 2],
      ['netIn', 1],
    ],
    writes: ['C:\\$LogFile', 'C:\\pagefile.sys', `${SYS32}\\config\\SOFTWARE.LOG1`, `${SYS32}\\config\\SYSTEM.LOG1`],
  },
  {
    id: 'services',
    image: `${SYS32}\\services.exe`,
    cmds: [`${SYS32}\\services.exe`],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows Publisher',
    sig: 'trusted',
    integrity: 'System',
    account: 'system',
    budget: [0, 0],
    acts: [
      ['regSet', 2],
      ['read', 1],
      ['child', 2],
    ],
    regs: [
      'HKLM\\SYSTEM\\CurrentControlSet\\Services\\BITS|Start|REG_DWORD|DWORD (0x00000003)',
      'HKLM\\SYSTEM\\CurrentControlSet\\Services\\wuauserv|Start|REG_DWORD|DWORD (0x00000003)',
      'HKLM\\SYSTEM\\CurrentControlSet\\Services\\TrustedInstaller|Start|REG_DWORD|DWORD (0x00000003)',
    ],
    reads: [`${SYS32}\\config\\SYSTEM`],
    children: [
      ['svchostBits', 2],
      ['trustedInstaller', 1],
    ],
  },
  {
    id: 'lsass',
    image: `${SYS32}\\lsass.exe`,
    cmds: [`C:\\Windows\\system32\\lsass.exe`],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows Publisher',
    sig: 'trusted',
    integrity: 'System',
    account: 'system',
    budget: [0, 0],
    acts: [
      ['net', 2],
      ['read', 1],
      ['regSet', 1],
    ],
    hosts: LAN_HOSTS,
    reads: [`${SYS32}\\config\\SAM`, `${SYS32}\\config\\SECURITY`],
    regs: ['HKLM\\SECURITY\\Policy\\Secrets\\$MACHINE.ACC\\CupdTime|(Default)|REG_BINARY|Binary Data'],
  },
  {
    id: 'svchostNetsvcs',
    image: `${SYS32}\\svchost.exe`,
    cmds: ['C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows Publisher',
    sig: 'trusted',
    integrity: 'System',
    account: 'system',
    budget: [0, 0],
    acts: [
      ['regSet', 3],
      ['write', 2],
      ['read', 2],
      ['child', 1],
    ],
    regs: [
      'HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tree\\Microsoft\\Windows\\UpdateOrchestrator\\Schedule Scan|Index|REG_DWORD|DWORD (0x00000003)',
      'HKLM\\SYSTEM\\CurrentControlSet\\Services\\bam\\State\\UserSettings\\%S|\\Device\\HarddiskVolume3\\Program Files\\Google\\Chrome\\Application\\chrome.exe|REG_BINARY|Binary Data',
      'HKLM\\SYSTEM\\CurrentControlSet\\Services\\bam\\State\\UserSettings\\%S|\\Device\\HarddiskVolume3\\Windows\\explorer.exe|REG_BINARY|Binary Data',
      'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Orchestrator|LastScanTime|REG_QWORD|QWORD (0x01da6b2c-0x8f3e1a00)',
    ],
    writes: [
      `${SYS32}\\Tasks\\Microsoft\\Windows\\UpdateOrchestrator\\Schedule Scan`,
      'C:\\Windows\\Logs\\WindowsUpdate\\WindowsUpdate.20240312.etl',
      `${SYS32}\\LogFiles\\Scm\\SCM.EVM`,
    ],
    reads: [`${SYS32}\\Tasks\\Microsoft\\Windows\\Defrag\\ScheduledDefrag`, `${SYS32}\\schedsvc.dll`, `${SYS32}\\ubpm.dll`],
    children: [
      ['taskhostw', 3],
      ['backgroundTaskHost', 1],
    ],
  },
  {
    id: 'svchostDns',
    image: `${SYS32}\\svchost.exe`,
    cmds: ['C:\\Windows\\system32\\svchost.exe -k NetworkService -p -s Dnscache'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows Publisher',
    sig: 'trusted',
    integrity: 'System',
    account: 'network',
    budget: [0, 0],
    acts: [
      ['dns', 3],
      ['net', 2],
      ['regSet', 1],
    ],
    hosts: WINDOWS_HOSTS,
    regs: [
      'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters\\Interfaces\\{5b7a3c41-9e2d-4f6a-8c1b-2d3e4f5a6b7c}|DhcpIPAddress|REG_SZ|%IP',
      'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters\\Interfaces\\{5b7a3c41-9e2d-4f6a-8c1b-2d3e4f5a6b7c}|LeaseObtainedTime|REG_DWORD|DWORD (0x65f0a1b2)',
    ],
  },
  {
    id: 'svchostWu',
    image: `${SYS32}\\svchost.exe`,
    cmds: ['C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s wuauserv'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows Publisher',
    sig: 'trusted',
    integrity: 'System',
    account: 'system',
    budget: [0, 0],
    acts: [
      ['net', 3],
      ['dns', 1],
      ['write', 2],
      ['read', 1],
      ['regSet', 1],
    ],
    hosts: WINDOWS_HOSTS,
    writes: [
      'C:\\Windows\\SoftwareDistribution\\DataStore\\DataStore.edb',
      'C:\\Windows\\SoftwareDistribution\\DataStore\\Logs\\edb.log',
      'C:\\Windows\\SoftwareDistribution\\Download\\a3f9c1\\windows10.0-kb5035853-x64.cab',
    ],
    reads: ['C:\\Windows\\SoftwareDistribution\\DataStore\\DataStore.edb', `${SYS32}\\wuaueng.dll`],
    regs: ['HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update|LastOnlineScanTimeForAppCategory|REG_SZ|2024-03-12 09:41:07'],
  },
  {
    id: 'defender',
    image: 'C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24020.7-0\\MsMpEng.exe',
    cmds: ['"C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24020.7-0\\MsMpEng.exe"'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Corporation',
    sig: 'trusted',
    integrity: 'System',
    account: 'system',
    budget: [0, 0],
    acts: [
      ['read', 6],
      ['write', 1],
      ['net', 1],
    ],
    hosts: [{ name: 'wdcp.microsoft.com', port: 443, proto: 'tcp' }],
    reads: [
      `${CHROME}`,
      `${OFFICE}\\WINWORD.EXE`,
      `${SYS32}\\ntdll.dll`,
      `${SYS32}\\kernel32.dll`,
      '%U\\Downloads\\ZoomInstallerFull.exe',
      '%U\\AppData\\Local\\Temp\\chrome_installer.log',
      `${SYS32}\\drivers\\etc\\hosts`,
    ],
    writes: [
      'C:\\ProgramData\\Microsoft\\Windows Defender\\Scans\\History\\Service\\DetectionHistory\\02\\mpcache-0A1B.bin',
      'C:\\ProgramData\\Microsoft\\Windows Defender\\Support\\MPLog-20240301-101500.log',
    ],
  },
  {
    id: 'explorer',
    image: 'C:\\Windows\\explorer.exe',
    cmds: ['C:\\Windows\\Explorer.EXE'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [0, 0],
    acts: [
      ['read', 4],
      ['regSet', 3],
      ['create', 1],
      ['write', 1],
      ['child', 4],
    ],
    reads: [
      '%U\\Desktop\\desktop.ini',
      '%U\\AppData\\Roaming\\Microsoft\\Windows\\Recent\\AutomaticDestinations\\5f7b5f1e01b83767.automaticDestinations-ms',
      '%U\\Documents\\見積書_2024Q3.xlsx',
      '%U\\Pictures\\Screenshots\\スクリーンショット 2024-03-12 101500.png',
      `${FILE_SERVER}\\営業部\\顧客一覧.xlsx`,
    ],
    writes: [
      '%U\\AppData\\Roaming\\Microsoft\\Windows\\Recent\\AutomaticDestinations\\5f7b5f1e01b83767.automaticDestinations-ms',
      '%U\\AppData\\Local\\Microsoft\\Windows\\Explorer\\thumbcache_256.db',
    ],
    creates: ['%U\\AppData\\Roaming\\Microsoft\\Windows\\Recent\\report-weekly.lnk', '%U\\Desktop\\新しいフォルダー\\memo.txt'],
    regs: [
      'HKU\\%S\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\RecentDocs\\.docx|MRUListEx|REG_BINARY|Binary Data',
      'HKU\\%S\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\RecentDocs\\.xlsx|MRUListEx|REG_BINARY|Binary Data',
      'HKU\\%S\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\FeatureUsage\\AppSwitched|Microsoft.Office.WINWORD.EXE.15|REG_DWORD|DWORD (0x0000002a)',
      'HKU\\%S\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\UserAssist\\{CEBFF5CD-ACE2-4F4F-9178-9926F41749EA}\\Count|HRZR_PGYFRFFVBA|REG_BINARY|Binary Data',
      'HKU\\%S\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\ComDlg32\\OpenSavePidlMRU\\*|MRUListEx|REG_BINARY|Binary Data',
    ],
    children: [
      ['chrome', 6],
      ['edge', 2],
      ['winword', 4],
      ['excel', 4],
      ['outlook', 1],
      ['teams', 1],
      ['onedrive', 1],
      ['notepad', 3],
      ['cmd', 2],
      ['powershell', 1],
    ],
  },
  // --- user applications -----------------------------------------------------
  {
    id: 'chrome',
    image: CHROME,
    cmds: [`"${CHROME}"`, `"${CHROME}" --restore-last-session`, `"${CHROME}" --profile-directory=Default`],
    cwd: 'C:\\Program Files\\Google\\Chrome\\Application\\',
    signer: 'Google LLC',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [150, 800],
    acts: [
      ['net', 6],
      ['dns', 3],
      ['read', 3],
      ['write', 4],
      ['create', 1],
      ['delete', 1],
      ['download', 1],
      ['child', 1],
    ],
    hosts: WEB_HOSTS,
    reads: [`${CHROME_DATA}\\Preferences`, `${CHROME_DATA}\\History`, `${CHROME_DATA}\\Network\\Cookies`, `${CHROME_DATA}\\Login Data`, 'C:\\Windows\\Fonts\\meiryo.ttc', 'C:\\Windows\\Fonts\\YuGothM.ttc'],
    writes: [...CACHE_FILES.map((f) => `${CHROME_DATA}\\Cache\\Cache_Data\\${f}`), `${CHROME_DATA}\\History-journal`, `${CHROME_DATA}\\Network\\Cookies-journal`],
    creates: CACHE_FILES.slice(0, 16).map((f) => `${CHROME_DATA}\\Cache\\Cache_Data\\${f}`),
    children: [['chromeRenderer', 1]],
  },
  {
    id: 'chromeRenderer',
    image: CHROME,
    cmds: [1, 2, 3, 4, 5, 6, 7, 8].map(
      (n) => `"${CHROME}" --type=renderer --lang=ja --device-scale-factor=1 --num-raster-threads=4 --renderer-client-id=${n + 6} --launch-time-ticks=${1_203_334_000 + n * 97}`,
    ),
    cwd: 'C:\\Program Files\\Google\\Chrome\\Application\\',
    signer: 'Google LLC',
    sig: 'trusted',
    integrity: 'Low',
    account: 'user',
    budget: [5, 60],
    acts: [['read', 1]],
    reads: ['C:\\Windows\\Fonts\\meiryo.ttc', 'C:\\Windows\\Fonts\\segoeui.ttf', `${SYS32}\\en-US\\KernelBase.dll.mui`],
  },
  {
    id: 'edge',
    image: EDGE,
    cmds: [`"${EDGE}"`, `"${EDGE}" --single-argument https://portal.corp.example/`],
    cwd: 'C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\',
    signer: 'Microsoft Corporation',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [100, 500],
    acts: [
      ['net', 6],
      ['dns', 3],
      ['read', 2],
      ['write', 4],
      ['download', 1],
    ],
    hosts: [...OFFICE_HOSTS, ...WEB_HOSTS.slice(0, 6)],
    reads: [`${EDGE_DATA}\\Preferences`, `${EDGE_DATA}\\History`, 'C:\\Windows\\Fonts\\meiryo.ttc'],
    writes: CACHE_FILES.slice(0, 24).map((f) => `${EDGE_DATA}\\Cache\\Cache_Data\\${f}`),
  },
  {
    id: 'winword',
    image: `${OFFICE}\\WINWORD.EXE`,
    cmds: DOCS.map((d) => `"${OFFICE}\\WINWORD.EXE" /n "%U\\Documents\\${d}.docx" /o ""`),
    cwd: '%U\\Documents\\',
    signer: 'Microsoft Corporation',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [30, 200],
    acts: [
      ['read', 4],
      ['write', 3],
      ['create', 2],
      ['rename', 1],
      ['delete', 1],
      ['regSet', 2],
      ['net', 2],
      ['dns', 1],
      ['child', 1],
    ],
    hosts: OFFICE_HOSTS,
    reads: [...DOCS.map((d) => `%U\\Documents\\${d}.docx`), '%U\\AppData\\Roaming\\Microsoft\\Templates\\Normal.dotm', `${FILE_SERVER}\\総務部\\規程集.docx`],
    writes: [...DOCS.map((d) => `%U\\Documents\\${d}.docx`), `${FILE_SERVER}\\営業部\\提案書_最終.docx`],
    creates: ['%U\\Documents\\~WRL0001.tmp', '%U\\Documents\\~$見積書_2024Q3.docx', '%U\\AppData\\Local\\Temp\\~WRS{4B1A2C3D-5E6F-4A7B-8C9D-0E1F2A3B4C5D}.tmp'],
    regs: [
      'HKU\\%S\\Software\\Microsoft\\Office\\16.0\\Word\\Reading Locations\\Document 0|File Path|REG_SZ|%U\\Documents\\report-weekly.docx',
      'HKU\\%S\\Software\\Microsoft\\Office\\16.0\\Common\\Roaming\\Identities|LastUpdated|REG_QWORD|QWORD (0x00000000-0x65f0a1b2)',
      'HKU\\%S\\Software\\Microsoft\\Office\\16.0\\Word\\Place MRU|Max Display|REG_DWORD|DWORD (0x00000019)',
    ],
    children: [['splwow64', 1]],
  },
  {
    id: 'excel',
    image: `${OFFICE}\\EXCEL.EXE`,
    cmds: DOCS.map((d) => `"${OFFICE}\\EXCEL.EXE" "%U\\Documents\\${d}.xlsx"`),
    cwd: '%U\\Documents\\',
    signer: 'Microsoft Corporation',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [30, 200],
    acts: [
      ['read', 4],
      ['write', 3],
      ['create', 2],
      ['rename', 1],
      ['delete', 1],
      ['regSet', 2],
      ['net', 2],
      ['dns', 1],
    ],
    hosts: OFFICE_HOSTS,
    reads: [...DOCS.map((d) => `%U\\Documents\\${d}.xlsx`), `${FILE_SERVER}\\経理部\\予算_2024.xlsx`],
    writes: [...DOCS.map((d) => `%U\\Documents\\${d}.xlsx`), `${FILE_SERVER}\\経理部\\予算_2024.xlsx`],
    creates: ['%U\\Documents\\~$budget_plan.xlsx', '%U\\Documents\\5A3F2E10', '%U\\AppData\\Local\\Temp\\~DF4E3C1B2A.TMP'],
    regs: [
      'HKU\\%S\\Software\\Microsoft\\Office\\16.0\\Excel\\File MRU|Item 1|REG_SZ|[F00000000][T01DA6B2C8F3E1A00][O00000000]*%U\\Documents\\budget_plan.xlsx',
      'HKU\\%S\\Software\\Microsoft\\Office\\16.0\\Excel\\Options|Maximized|REG_DWORD|DWORD (0x00000003)',
    ],
  },
  {
    id: 'outlook',
    image: `${OFFICE}\\OUTLOOK.EXE`,
    cmds: [`"${OFFICE}\\OUTLOOK.EXE"`],
    cwd: `${OFFICE}\\`,
    signer: 'Microsoft Corporation',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [200, 1000],
    single: true,
    acts: [
      ['net', 5],
      ['dns', 2],
      ['write', 4],
      ['read', 2],
      ['create', 1],
      ['regSet', 1],
    ],
    hosts: OFFICE_HOSTS,
    reads: ['%U\\AppData\\Local\\Microsoft\\Outlook\\%N@corp.example.ost', '%U\\AppData\\Roaming\\Microsoft\\Signatures\\署名.htm'],
    writes: ['%U\\AppData\\Local\\Microsoft\\Outlook\\%N@corp.example.ost', '%U\\AppData\\Local\\Microsoft\\Outlook\\RoamCache\\Stream_Autocomplete_0_1A2B3C.dat'],
    creates: [
      '%U\\AppData\\Local\\Microsoft\\Windows\\INetCache\\Content.Outlook\\Q3R8T1ZK\\請求書_3月分.pdf',
      '%U\\AppData\\Local\\Microsoft\\Windows\\INetCache\\Content.Outlook\\Q3R8T1ZK\\agenda.docx',
    ],
    regs: ['HKU\\%S\\Software\\Microsoft\\Office\\16.0\\Outlook\\Profiles\\Outlook\\0a0d020000000000c000000000000046|01020fff|REG_BINARY|Binary Data'],
  },
  {
    id: 'teams',
    image: 'C:\\Program Files\\WindowsApps\\MSTeams_24033.811.2738.2546_x64__8wekyb3d8bbwe\\ms-teams.exe',
    cmds: ['"C:\\Program Files\\WindowsApps\\MSTeams_24033.811.2738.2546_x64__8wekyb3d8bbwe\\ms-teams.exe" msteams:system-initiated'],
    cwd: 'C:\\Program Files\\WindowsApps\\MSTeams_24033.811.2738.2546_x64__8wekyb3d8bbwe\\',
    signer: 'Microsoft Corporation',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [100, 600],
    single: true,
    acts: [
      ['net', 5],
      ['dns', 2],
      ['write', 2],
      ['read', 1],
    ],
    hosts: [
      { name: 'teams.microsoft.com', port: 443, proto: 'tcp' },
      { name: 'presence.teams.microsoft.com', port: 443, proto: 'tcp' },
      { name: 'api.flightproxy.teams.microsoft.com', port: 3478, proto: 'udp' },
    ],
    reads: ['%U\\AppData\\Local\\Packages\\MSTeams_8wekyb3d8bbwe\\LocalCache\\Microsoft\\MSTeams\\app_settings.json'],
    writes: ['%U\\AppData\\Local\\Packages\\MSTeams_8wekyb3d8bbwe\\LocalCache\\Microsoft\\MSTeams\\EBWebView\\Default\\Cache\\Cache_Data\\data_1'],
  },
  {
    id: 'onedrive',
    image: '%U\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe',
    cmds: ['"%U\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe" /background'],
    cwd: '%U\\AppData\\Local\\Microsoft\\OneDrive\\',
    signer: 'Microsoft Corporation',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [100, 600],
    single: true,
    acts: [
      ['read', 3],
      ['net', 3],
      ['dns', 1],
      ['write', 1],
    ],
    hosts: [
      { name: 'corp-my.sharepoint.com', port: 443, proto: 'tcp' },
      { name: 'g.live.com', port: 443, proto: 'tcp' },
    ],
    reads: [...DOCS.map((d) => `%U\\OneDrive - Corp\\${d}.docx`)],
    writes: ['%U\\AppData\\Local\\Microsoft\\OneDrive\\logs\\Business1\\SyncEngine-2024-03-12.0915.4532.1.odl'],
  },
  {
    id: 'notepad',
    image: `${SYS32}\\notepad.exe`,
    cmds: [`"${SYS32}\\notepad.exe"`, `"${SYS32}\\NOTEPAD.EXE" %U\\Desktop\\memo.txt`, `"${SYS32}\\notepad.exe" C:\\Windows\\System32\\drivers\\etc\\hosts`],
    cwd: '%U\\',
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [2, 15],
    acts: [
      ['read', 2],
      ['write', 1],
      ['create', 1],
    ],
    reads: ['%U\\Desktop\\memo.txt', `${SYS32}\\drivers\\etc\\hosts`],
    writes: ['%U\\Desktop\\memo.txt', 'E:\\backup\\memo.txt'],
    creates: ['%U\\Desktop\\todo.txt'],
  },
  {
    id: 'cmd',
    image: `${SYS32}\\cmd.exe`,
    cmds: ['"C:\\Windows\\system32\\cmd.exe" ', 'cmd.exe /c "%U\\Desktop\\backup.bat"', 'C:\\Windows\\system32\\cmd.exe /d /c npm run build'],
    cwd: '%U\\',
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [3, 30],
    acts: [
      ['read', 2],
      ['write', 1],
      ['child', 4],
    ],
    reads: ['%U\\Desktop\\backup.bat', `${SYS32}\\cmd.exe`],
    writes: ['E:\\backup\\backup.log', `${FILE_SERVER}\\backup\\%N\\backup.log`],
    children: [
      ['conhost', 3],
      ['ping', 2],
      ['ipconfig', 1],
      ['whoami', 1],
      ['netexe', 1],
    ],
  },
  {
    id: 'powershell',
    image: `${SYS32}\\WindowsPowerShell\\v1.0\\powershell.exe`,
    cmds: [
      '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe" ',
      'powershell.exe -NoProfile -ExecutionPolicy Bypass -File "%U\\Documents\\scripts\\report.ps1"',
      'powershell.exe -Command "Get-Process | Sort-Object CPU -Descending | Select-Object -First 10"',
    ],
    cwd: '%U\\',
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [5, 40],
    acts: [
      ['read', 3],
      ['create', 1],
      ['delete', 1],
      ['net', 1],
      ['dns', 1],
      ['child', 2],
    ],
    hosts: [{ name: 'www.powershellgallery.com', port: 443, proto: 'tcp' }, ...LAN_HOSTS.slice(0, 1)],
    reads: [
      '%U\\Documents\\scripts\\report.ps1',
      `${SYS32}\\WindowsPowerShell\\v1.0\\Modules\\Microsoft.PowerShell.Utility\\Microsoft.PowerShell.Utility.psd1`,
      '%U\\Documents\\WindowsPowerShell\\Microsoft.PowerShell_profile.ps1',
    ],
    creates: ['%U\\AppData\\Local\\Temp\\__PSScriptPolicyTest_3kx1vq2n.ayd.ps1', '%U\\AppData\\Local\\Temp\\__PSScriptPolicyTest_0m4jz5tr.kfe.psm1'],
    children: [
      ['conhost', 3],
      ['whoami', 1],
      ['ipconfig', 1],
    ],
  },
  // --- short-lived children ---------------------------------------------------
  {
    id: 'conhost',
    image: `${SYS32}\\conhost.exe`,
    cmds: ['\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1'],
    cwd: 'C:\\Windows\\',
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [0, 2],
    acts: [['read', 1]],
    reads: [`${SYS32}\\en-US\\conhost.exe.mui`],
  },
  {
    id: 'ping',
    image: `${SYS32}\\PING.EXE`,
    cmds: ['ping  fs01.corp.example', 'ping -n 4 10.0.0.1', 'ping  www.google.com'],
    cwd: '%U\\',
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [0, 2],
    acts: [['dns', 1]],
    hosts: [LAN_HOSTS[0] as HostSpec, WEB_HOSTS[0] as HostSpec],
  },
  {
    id: 'ipconfig',
    image: `${SYS32}\\ipconfig.exe`,
    cmds: ['ipconfig  /all', 'ipconfig  /flushdns'],
    cwd: '%U\\',
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [0, 1],
    acts: [['read', 1]],
    reads: [`${SYS32}\\IPHLPAPI.DLL`],
  },
  {
    id: 'whoami',
    image: `${SYS32}\\whoami.exe`,
    cmds: ['whoami', 'whoami  /groups'],
    cwd: '%U\\',
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [0, 1],
    acts: [['read', 1]],
    reads: [`${SYS32}\\whoami.exe`],
  },
  {
    id: 'netexe',
    image: `${SYS32}\\net.exe`,
    cmds: ['net  use Z: \\\\fs01.corp.example\\share', 'net  use'],
    cwd: '%U\\',
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [0, 2],
    acts: [['net', 1]],
    hosts: [LAN_HOSTS[0] as HostSpec],
  },
  {
    id: 'splwow64',
    image: 'C:\\Windows\\splwow64.exe',
    cmds: ['C:\\Windows\\splwow64.exe 12288'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [1, 6],
    acts: [
      ['read', 2],
      ['net', 1],
    ],
    reads: [`${SYS32}\\spool\\drivers\\x64\\3\\mxdwdrv.dll`],
    hosts: [{ name: 'prn-3f-01.corp.example', port: 9100, proto: 'tcp' }],
  },
  {
    id: 'svchostBits',
    image: `${SYS32}\\svchost.exe`,
    cmds: ['C:\\Windows\\System32\\svchost.exe -k netsvcs -p -s BITS'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows Publisher',
    sig: 'trusted',
    integrity: 'System',
    account: 'system',
    budget: [20, 120],
    acts: [
      ['net', 3],
      ['dns', 1],
      ['write', 2],
      ['regSet', 1],
    ],
    hosts: WINDOWS_HOSTS,
    writes: ['C:\\ProgramData\\Microsoft\\Network\\Downloader\\qmgr.db', 'C:\\ProgramData\\Microsoft\\Network\\Downloader\\edb.log'],
    regs: ['HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\BITS|PerfMonCounters|REG_DWORD|DWORD (0x00000000)'],
  },
  {
    id: 'trustedInstaller',
    image: 'C:\\Windows\\servicing\\TrustedInstaller.exe',
    cmds: ['C:\\Windows\\servicing\\TrustedInstaller.exe'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'System',
    account: 'system',
    budget: [5, 40],
    acts: [
      ['regSet', 2],
      ['read', 1],
      ['child', 1],
    ],
    regs: ['HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing|LastTrustTime|REG_QWORD|QWORD (0x01da6b2c-0x8f3e1a00)'],
    reads: ['C:\\Windows\\servicing\\Packages\\Package_for_RollupFix~31bf3856ad364e35~amd64~~22621.3296.1.9.mum'],
    children: [['tiWorker', 1]],
  },
  {
    id: 'tiWorker',
    image: 'C:\\Windows\\WinSxS\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.22621.3228_none_6cd0e2a1d5b5a3f2\\TiWorker.exe',
    cmds: ['C:\\Windows\\winsxs\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.22621.3228_none_6cd0e2a1d5b5a3f2\\TiWorker.exe -Embedding'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'System',
    account: 'system',
    budget: [20, 150],
    acts: [
      ['write', 3],
      ['read', 2],
      ['regSet', 2],
      ['regCreate', 1],
      ['regDelete', 1],
      ['create', 1],
      ['delete', 1],
    ],
    writes: ['C:\\Windows\\Logs\\CBS\\CBS.log', 'C:\\Windows\\WinSxS\\pending.xml', `${SYS32}\\config\\COMPONENTS`],
    reads: ['C:\\Windows\\WinSxS\\Manifests\\amd64_microsoft-windows-kernel32_31bf3856ad364e35_10.0.22621.3296_none_9a1b2c3d4e5f6a7b.manifest', `${SYS32}\\config\\COMPONENTS`],
    creates: ['C:\\Windows\\WinSxS\\Temp\\PendingDeletes\\$$DeleteMe.kernel32.dll.01da6b2c8f3e1a00.0001', 'C:\\Windows\\Temp\\CBS_00001.tmp'],
    regs: [
      'HKLM\\COMPONENTS\\DerivedData\\Components\\amd64_microsoft-windows-kernel32_31bf3856ad364e35_10.0.22621.3296_none_9a1b2c3d|S256H|REG_BINARY|Binary Data',
      'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Component Based Servicing\\SessionsPending|Exclusive|REG_DWORD|DWORD (0x00000000)',
    ],
  },
  {
    id: 'taskhostw',
    image: `${SYS32}\\taskhostw.exe`,
    cmds: ['taskhostw.exe Install $(Arg0)', 'taskhostw.exe KEYROAMING', 'taskhostw.exe -RegisterDevice -Settings'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Medium',
    account: 'user',
    budget: [2, 20],
    acts: [
      ['regSet', 2],
      ['read', 1],
      ['net', 1],
    ],
    regs: ['HKU\\%S\\Software\\Microsoft\\Windows\\CurrentVersion\\CloudStore\\Store\\Cache\\DefaultAccount|Data|REG_BINARY|Binary Data'],
    reads: [`${SYS32}\\Tasks\\Microsoft\\Windows\\Workplace Join\\Automatic-Device-Join`],
    hosts: [{ name: 'enterpriseregistration.windows.net', port: 443, proto: 'tcp' }],
  },
  {
    id: 'backgroundTaskHost',
    image: `${SYS32}\\backgroundTaskHost.exe`,
    cmds: ['"C:\\Windows\\system32\\backgroundTaskHost.exe" -ServerName:BackgroundTaskHost.WebAccountBackgroundManagerTask'],
    cwd: `${SYS32}\\`,
    signer: 'Microsoft Windows',
    sig: 'trusted',
    integrity: 'Low',
    account: 'user',
    budget: [1, 10],
    acts: [
      ['net', 1],
      ['dns', 1],
    ],
    hosts: [{ name: 'login.microsoftonline.com', port: 443, proto: 'tcp' }],
  },
  // --- malware (used by the detection chain) ------------------------------------
  {
    id: 'malware',
    image: '%U\\Downloads\\payload.exe',
    cmds: ['"%U\\Downloads\\payload.exe"'],
    cwd: '%U\\Downloads\\',
    signer: '',
    sig: 'unsigned',
    integrity: 'Medium',
    account: 'user',
    budget: [5, 40],
    acts: [
      ['net', 3],
      ['dns', 1],
      ['read', 2],
      ['write', 1],
      ['regSet', 1],
      ['child', 1],
    ],
    hosts: BAD_HOSTS.map((name) => ({ name, port: 443, proto: 'tcp' as const })),
    reads: [`${CHROME_DATA}\\Login Data`, `${CHROME_DATA}\\Network\\Cookies`, '%U\\AppData\\Roaming\\Mozilla\\Firefox\\Profiles\\x1y2z3.default\\logins.json'],
    writes: ['%U\\AppData\\Local\\Temp\\tmp4A21.tmp'],
    regs: ['HKU\\%S\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\Advanced|Hidden|REG_DWORD|DWORD (0x00000002)'],
    children: [
      ['cmd', 1],
      ['whoami', 1],
    ],
  },
];

const ROOT_IDS = ['system', 'services', 'lsass', 'svchostNetsvcs', 'svchostDns', 'svchostWu', 'defender', 'explorer'] as const;

const ROOT_PIDS: Readonly<Record<string, number>> = {
  system: 4,
  services: 784,
  lsass: 804,
  svchostNetsvcs: 1432,
  svchostDns: 2108,
  svchostWu: 2444,
  defender: 3880,
  explorer: 5412,
};

const USER_NAMES = [
  'tanaka.h',
  'suzuki.y',
  'sato.k',
  'takahashi.m',
  'watanabe.a',
  'ito.s',
  'yamamoto.r',
  'nakamura.t',
  'kobayashi.n',
  'kato.e',
  'yoshida.j',
  'yamada.h',
  'sasaki.k',
  'yamaguchi.m',
  'matsumoto.y',
  'inoue.d',
  'kimura.s',
  'hayashi.a',
  'shimizu.t',
  'yamazaki.k',
  'mori.y',
  'abe.r',
  'ikeda.m',
  'hashimoto.s',
];

interface UsbDevice {
  readonly vendorId: string;
  readonly productId: string;
  readonly vendor: string;
  readonly model: string;
  readonly type: string;
  readonly storage: boolean;
}

const USB_DEVICES: readonly UsbDevice[] = [
  { vendorId: '0951', productId: '1666', vendor: 'Kingston', model: 'DataTraveler 3.0', type: 'storage', storage: true },
  { vendorId: '0781', productId: '5581', vendor: 'SanDisk', model: 'Ultra', type: 'storage', storage: true },
  { vendorId: '0411', productId: '01ee', vendor: 'BUFFALO', model: 'RUF3-K', type: 'storage', storage: true },
  { vendorId: '04bb', productId: '0c8a', vendor: 'I-O DATA', model: 'U3-STD', type: 'storage', storage: true },
  { vendorId: '046d', productId: 'c534', vendor: 'Logitech', model: 'Unifying Receiver', type: 'hid', storage: false },
  { vendorId: '05ac', productId: '12a8', vendor: 'Apple', model: 'iPhone', type: 'phone', storage: false },
];

/** Vendor IDs of the USB devices the generator inserts (an allow-list naming them lets all of them in). */
export const TRAIL_USB_VENDOR_IDS: readonly string[] = [...new Set(USB_DEVICES.map((d) => d.vendorId))];

const REMOVABLE_FILES = ['E:\\backup\\memo.txt', 'E:\\資料\\見積書_2024Q3.xlsx', 'E:\\資料\\提案書_ドラフト.docx', 'E:\\photos\\IMG_0042.JPG'];

// ---------------------------------------------------------------------------
// Compiled (per user name) catalogue, shared between generators
// ---------------------------------------------------------------------------

type Volume = 'fixed' | 'removable' | 'network';

interface FileEntry {
  readonly path: string;
  readonly vol: Volume;
  /** Typical size, bytes. */
  readonly size: number;
  /** Whether writes carry a sha256 (executables, documents). */
  readonly hashed: boolean;
}

interface RegEntry {
  /** Key up to the user SID (the whole key when it holds no SID). */
  readonly keyHead: string;
  /** Key after the user SID, when it holds one (`%S`): key = keyHead + SID + keyTail. */
  readonly keyTail: string | undefined;
  readonly value: string;
  readonly dtype: string;
  readonly data: string;
  /** Whether `data` contains `%IP`. */
  readonly needsIp: boolean;
}

interface HostEntry {
  readonly name: string;
  readonly ip: string;
  readonly port: number;
  readonly proto: 'tcp' | 'udp';
}

interface CompiledImage {
  readonly spec: ImageSpec;
  readonly image: string;
  readonly cmds: readonly string[];
  readonly cwd: string;
  readonly sha256: string;
  readonly acts: readonly Act[];
  readonly reads: readonly FileEntry[];
  readonly writes: readonly FileEntry[];
  readonly creates: readonly FileEntry[];
  readonly regs: readonly RegEntry[];
  readonly hosts: readonly HostEntry[];
  readonly children: readonly string[];
}

interface UserCatalogue {
  readonly profile: string;
  readonly images: ReadonlyMap<string, CompiledImage>;
  readonly downloads: readonly FileEntry[];
  readonly removable: readonly FileEntry[];
}

function volumeOf(path: string): Volume {
  if (path.startsWith('\\\\')) return 'network';
  if (path.startsWith('E:')) return 'removable';
  return 'fixed';
}

function fileEntry(path: string): FileEntry {
  const h = hashString(path);
  const lower = path.toLowerCase();
  const hashed = /\.(exe|dll|msi|scr|docx|xlsx|pdf|zip|ps1|bat|js)$/.test(lower);
  const size = lower.endsWith('.exe') || lower.endsWith('.msi') ? 400_000 + (h % 90_000_000) : 200 + (h % 2_000_000);
  return { path, vol: volumeOf(path), size, hashed };
}

function hostEntry(h: HostSpec): HostEntry {
  const hv = hashString(h.name, 7);
  const ip = h.name.endsWith('.corp.example') ? `10.0.${(hv >>> 8) & 15}.${1 + (hv % 250)}` : ipFromHash(hv, [13, 20, 23, 40, 52, 104, 142, 151, 172, 185, 203]);
  return { name: h.name, ip, port: h.port, proto: h.proto };
}

const catalogues = new Map<string, UserCatalogue>();

/** Compiles the catalogue for one user name once; every generator of that user shares it. */
function userCatalogue(userName: string): UserCatalogue {
  const cached = catalogues.get(userName);
  if (cached) return cached;
  const profile = `C:\\Users\\${userName}`;
  const sub = (s: string): string => s.replaceAll('%U', profile).replaceAll('%N', userName);
  const images = new Map<string, CompiledImage>();
  for (const spec of IMAGES) {
    const image = sub(spec.image);
    images.set(spec.id, {
      spec,
      image,
      cmds: spec.cmds.map((c) => sub(c).replaceAll('%I', image)),
      cwd: sub(spec.cwd),
      // Same binary, same hash on every PC; user-profile installs hash by the generic path.
      sha256: stableSha(spec.image),
      acts: weighted(spec.acts),
      reads: (spec.reads ?? []).map((p) => fileEntry(sub(p))),
      writes: (spec.writes ?? []).map((p) => fileEntry(sub(p))),
      creates: (spec.creates ?? []).map((p) => fileEntry(sub(p))),
      regs: (spec.regs ?? []).map((r) => {
        const [key = '', value = '', dtype = '', data = ''] = r.split('|');
        const sidAt = key.indexOf('%S');
        return {
          keyHead: sub(sidAt < 0 ? key : key.slice(0, sidAt)),
          keyTail: sidAt < 0 ? undefined : sub(key.slice(sidAt + 2)),
          value,
          dtype,
          data: sub(data),
          needsIp: data.includes('%IP'),
        };
      }),
      hosts: (spec.hosts ?? []).map(hostEntry),
      children: weighted(spec.children ?? []),
    });
  }
  const catalogue: UserCatalogue = {
    profile,
    images,
    downloads: DOWNLOAD_NAMES.map((n) => fileEntry(`${profile}\\Downloads\\${n}`)),
    removable: REMOVABLE_FILES.map(fileEntry),
  };
  catalogues.set(userName, catalogue);
  return catalogue;
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

interface Proc {
  readonly pg: string;
  readonly pid: number;
  readonly image: string;
  readonly cmd: string;
  readonly user: string;
  readonly img: CompiledImage;
  readonly root: boolean;
  budget: number;
  /** Index in the live table, -1 once ended. */
  slot: number;
}

interface OpenLogon {
  readonly userName: string;
  readonly domain: string;
  readonly logonType: number;
  readonly logonId: string;
  readonly user: string;
}

interface ConnectedUsb {
  readonly device: UsbDevice;
  readonly instanceId: string;
  readonly serial: string;
  readonly drive: string | undefined;
}

/** Fewer live (non-root) processes than this and the generator starts one. */
const MIN_LIVE = 6;
/** More live (non-root) processes than this and the generator starts none. */
const MAX_LIVE = 40;
/** Probability per produced step of starting a process from explorer / services. */
const SPAWN_RATE = 0.02;
const SESSION_RATE = 0.002;
const USB_RATE = 0.0015;
const DEFAULT_DETECT_RATE = 1 / 20_000;
/** Assumed spacing of the first call's events, ms (no previous `nowMs` to start from). */
const FIRST_CALL_GAP_MS = 50;

const SYSTEM_SID = 'S-1-5-18';
const LOCAL_SERVICE_SID = 'S-1-5-19';
const NETWORK_SERVICE_SID = 'S-1-5-20';

/**
 * Creates a seeded trail-event generator for one PC.
 *
 * @param options seed, computer name, and optional user identity, IP and
 *   `detectRate` (probability per event of a detection chain, default 1/20,000).
 * @returns a {@link TrailGenerator}; its output depends only on the options and
 *   the arguments passed to `next()`.
 */
export function createTrailGenerator(options: TrailGeneratorOptions): TrailGenerator {
  const computer = options.computer;
  const rng = createPrng(hashString(computer, options.seed | 0) ^ Math.imul(options.seed | 0, 0x9e3779b1));
  const machineHash = hashString(computer, options.seed | 0);
  const userName = options.userName ?? (USER_NAMES[hashString(computer, 3) % USER_NAMES.length] as string);
  const domain = options.domain ?? 'CORP';
  const userSid =
    options.userSid ??
    `S-1-5-21-${1_000_000_000 + (machineHash % 1_000_000_000)}-${1_000_000_000 + (hashString(computer, 11) % 1_000_000_000)}-${1_000_000_000 + (hashString(computer, 13) % 1_000_000_000)}-1001`;
  const lip = options.ip ?? `10.${16 + (machineHash & 15)}.${(machineHash >>> 8) & 255}.${1 + ((machineHash >>> 16) % 254)}`;
  const detectRate = options.detectRate ?? DEFAULT_DETECT_RATE;
  const cat = userCatalogue(userName);
  const userHivePrefix = `HKU\\${userSid}`;

  // Sysmon ProcessGuid: the first group is derived from the machine, the rest
  // from a start-time-like counter and random bits.
  const machineGroup = hex32(machineHash);
  let guidCounter = randU32(rng);

  function newGuid(): string {
    guidCounter = (guidCounter + 1 + Math.floor(rng() * 64)) >>> 0;
    const r = randU32(rng);
    return `{${machineGroup}-${hex16(guidCounter >>> 16)}-${hex16(guidCounter)}-${hex16(r >>> 16)}-${hex16(r)}${hex32(randU32(rng))}}`;
  }

  const live: Proc[] = [];
  const livePids = new Set<number>();
  const roots: Proc[] = [];
  let nonRootLive = 0;

  function sidFor(account: Account): string {
    switch (account) {
      case 'user':
        return userSid;
      case 'system':
        return SYSTEM_SID;
      case 'local':
        return LOCAL_SERVICE_SID;
      case 'network':
        return NETWORK_SERVICE_SID;
    }
  }

  function addLive(p: Proc): void {
    p.slot = live.length;
    live.push(p);
    livePids.add(p.pid);
    if (!p.root) nonRootLive++;
  }

  function removeLive(p: Proc): void {
    const slot = p.slot;
    if (slot < 0) return;
    const last = live.pop() as Proc;
    if (last !== p) {
      live[slot] = last;
      last.slot = slot;
    }
    p.slot = -1;
    livePids.delete(p.pid);
    if (!p.root) nonRootLive--;
  }

  function image(id: string): CompiledImage {
    return cat.images.get(id) as CompiledImage;
  }

  for (const id of ROOT_IDS) {
    const img = image(id);
    const p: Proc = {
      pg: newGuid(),
      pid: ROOT_PIDS[id] as number,
      image: img.image,
      cmd: img.cmds[0] as string,
      user: sidFor(img.spec.account),
      img,
      root: true,
      budget: Number.POSITIVE_INFINITY,
      slot: -1,
    };
    roots.push(p);
    addLive(p);
  }
  const explorer = roots[ROOT_IDS.indexOf('explorer')] as Proc;
  const services = roots[ROOT_IDS.indexOf('services')] as Proc;
  const defender = roots[ROOT_IDS.indexOf('defender')] as Proc;
  const lsass = roots[ROOT_IDS.indexOf('lsass')] as Proc;

  /** Events produced but not yet handed out (a chain produces several at once). */
  let pending: Array<TrailEvent | undefined> = [];
  let pendingHead = 0;
  let detections = 0;
  let lastTs = Number.NEGATIVE_INFINITY;
  let lastNowMs: number | undefined;
  let currentNowMs = 0;
  const openLogons: OpenLogon[] = [];
  let usb: ConnectedUsb | undefined;
  let logonCounter = 0x3a000 + (machineHash & 0xffff);

  function push(ev: TrailEvent): void {
    pending.push(ev);
  }

  function newPid(): number {
    for (let i = 0; i < 8; i++) {
      const pid = 4 * between(rng, 150, 9000);
      if (!livePids.has(pid)) return pid;
    }
    return 4 * between(rng, 9001, 16000);
  }

  function spawn(parent: Proc, img: CompiledImage, overrides?: { image: string; cmd: string; sha256: string; cwd: string }): Proc {
    const [min, max] = img.spec.budget;
    const p: Proc = {
      pg: newGuid(),
      pid: newPid(),
      image: overrides ? overrides.image : img.image,
      cmd: overrides ? overrides.cmd : pick(rng, img.cmds),
      user: sidFor(img.spec.account),
      img,
      root: false,
      budget: between(rng, min, max),
      slot: -1,
    };
    push({
      ts: 0,
      k: 'proc.start',
      seq: 0,
      pg: p.pg,
      pid: p.pid,
      user: p.user,
      image: p.image,
      cmd: p.cmd,
      sha256: overrides ? overrides.sha256 : img.sha256,
      signer: img.spec.signer,
      sig: img.spec.sig,
      ppg: parent.pg,
      ppid: parent.pid,
      pimage: parent.image,
      pcmd: parent.cmd,
      cwd: overrides ? overrides.cwd : img.cwd,
      integrity: img.spec.integrity,
    });
    addLive(p);
    return p;
  }

  function end(p: Proc, exit: number): void {
    push({ ts: 0, k: 'proc.end', seq: 0, pg: p.pg, pid: p.pid, user: p.user, image: p.image, exit });
    removeLive(p);
  }

  function findLive(id: string): Proc | undefined {
    for (let i = 0; i < live.length; i++) {
      const p = live[i] as Proc;
      if (p.img.spec.id === id) return p;
    }
    return undefined;
  }

  /** Starts a child of `parent` chosen from its children table (singletons respected). */
  function spawnChild(parent: Proc): boolean {
    const children = parent.img.children;
    if (children.length === 0 || nonRootLive >= MAX_LIVE) return false;
    const img = image(pick(rng, children));
    if (img.spec.single && findLive(img.spec.id)) return false;
    spawn(parent, img);
    return true;
  }

  function fileEvent(kind: 'file.create' | 'file.write', p: Proc, f: FileEntry, sha256?: string): void {
    const size = Math.max(0, f.size + Math.floor((rng() - 0.5) * f.size * 0.2));
    if (f.hashed || sha256) {
      push({ ts: 0, k: kind, seq: 0, pg: p.pg, pid: p.pid, user: p.user, path: f.path, sha256: sha256 ?? pick(rng, SHA_POOL), size, vol: f.vol });
    } else {
      push({ ts: 0, k: kind, seq: 0, pg: p.pg, pid: p.pid, user: p.user, path: f.path, size, vol: f.vol });
    }
  }

  function readEvent(p: Proc, f: FileEntry): void {
    const count = rng() < 0.6 ? 1 : between(rng, 2, 40);
    // tsLast is filled in when the event gets its timestamp.
    push({ ts: 0, k: 'file.read', seq: 0, pg: p.pg, pid: p.pid, user: p.user, path: f.path, vol: f.vol, count, tsLast: count });
  }

  function dnsEvent(p: Proc, h: HostEntry): void {
    const answers = h.name.endsWith('.corp.example') || rng() < 0.6 ? [h.ip] : [h.ip, ipFromHash(hashString(h.name, 99), [13, 20, 23, 104, 142, 172])];
    push({ ts: 0, k: 'net.dns', seq: 0, pg: p.pg, pid: p.pid, user: p.user, qname: h.name, qtype: 'A', answers });
  }

  function connEvent(p: Proc, h: HostEntry): void {
    push({
      ts: 0,
      k: 'net.conn',
      seq: 0,
      pg: p.pg,
      pid: p.pid,
      user: p.user,
      proto: h.proto,
      dir: 'out',
      lip,
      lport: between(rng, 49152, 65535),
      rip: h.ip,
      rport: h.port,
      rhost: h.name,
    });
  }

  function regEvent(kind: 'reg.set' | 'reg.create' | 'reg.delete', p: Proc, r: RegEntry): void {
    const key = r.keyTail === undefined ? r.keyHead : r.keyHead + userSid + r.keyTail;
    if (kind === 'reg.create') {
      push({ ts: 0, k: kind, seq: 0, pg: p.pg, pid: p.pid, user: p.user, key });
    } else if (kind === 'reg.delete') {
      push({ ts: 0, k: kind, seq: 0, pg: p.pg, pid: p.pid, user: p.user, key, value: r.value });
    } else {
      push({ ts: 0, k: kind, seq: 0, pg: p.pg, pid: p.pid, user: p.user, key, value: r.value, dtype: r.dtype, data: r.needsIp ? r.data.replace('%IP', lip) : r.data });
    }
  }

  /** Picks the file pool for an act, sometimes redirected to a connected USB drive. */
  function filesFor(p: Proc, pool: readonly FileEntry[]): readonly FileEntry[] {
    if (usb?.drive && p === explorer && rng() < 0.4) return cat.removable;
    return pool;
  }

  function act(p: Proc): void {
    const img = p.img;
    const a = pick(rng, img.acts);
    switch (a) {
      case 'read': {
        const pool = filesFor(p, img.reads);
        if (pool.length > 0) readEvent(p, pick(rng, pool));
        else fallback(p);
        return;
      }
      case 'write': {
        const pool = filesFor(p, img.writes);
        if (pool.length > 0) fileEvent('file.write', p, pick(rng, pool));
        else fallback(p);
        return;
      }
      case 'create': {
        const pool = filesFor(p, img.creates);
        if (pool.length > 0) fileEvent('file.create', p, pick(rng, pool));
        else fallback(p);
        return;
      }
      case 'delete': {
        if (img.creates.length > 0) {
          const f = pick(rng, img.creates);
          push({ ts: 0, k: 'file.delete', seq: 0, pg: p.pg, pid: p.pid, user: p.user, path: f.path });
        } else fallback(p);
        return;
      }
      case 'rename': {
        if (img.creates.length > 0 && img.writes.length > 0) {
          push({ ts: 0, k: 'file.rename', seq: 0, pg: p.pg, pid: p.pid, user: p.user, path: pick(rng, img.creates).path, newPath: pick(rng, img.writes).path });
        } else fallback(p);
        return;
      }
      case 'regSet':
      case 'regCreate':
      case 'regDelete': {
        if (img.regs.length > 0) regEvent(a === 'regSet' ? 'reg.set' : a === 'regCreate' ? 'reg.create' : 'reg.delete', p, pick(rng, img.regs));
        else fallback(p);
        return;
      }
      case 'dns': {
        if (img.hosts.length > 0) dnsEvent(p, pick(rng, img.hosts));
        else fallback(p);
        return;
      }
      case 'net': {
        if (img.hosts.length > 0) {
          const h = pick(rng, img.hosts);
          // A fresh name is looked up first; a cached one is not.
          if (rng() < 0.25) dnsEvent(p, h);
          connEvent(p, h);
        } else fallback(p);
        return;
      }
      case 'netIn': {
        const rip = `10.0.${between(rng, 0, 15)}.${between(rng, 1, 250)}`;
        push({ ts: 0, k: 'net.conn', seq: 0, pg: p.pg, pid: p.pid, user: p.user, proto: 'tcp', dir: 'in', lip, lport: rng() < 0.8 ? 445 : 3389, rip, rport: between(rng, 49152, 65535) });
        return;
      }
      case 'download': {
        const f = pick(rng, cat.downloads);
        const name = f.path.slice(f.path.lastIndexOf('\\') + 1);
        const origin = pick(rng, DOWNLOAD_HOSTS);
        push({
          ts: 0,
          k: 'file.create',
          seq: 0,
          pg: p.pg,
          pid: p.pid,
          user: p.user,
          path: f.path,
          sha256: stableSha(f.path),
          size: f.size,
          vol: f.vol,
          originUrl: origin + encodeURIComponent(name),
          referrerUrl: origin,
          zone: 3,
        });
        return;
      }
      case 'child': {
        if (!spawnChild(p)) fallback(p);
        return;
      }
    }
  }

  /** Used when an act has no material: a file read keeps the step productive. */
  function fallback(p: Proc): void {
    const pool = p.img.reads.length > 0 ? p.img.reads : defender.img.reads;
    readEvent(p, pick(rng, pool));
  }

  function sessionEvent(): void {
    if (openLogons.length > 0 && rng() < 0.45) {
      const i = Math.floor(rng() * openLogons.length);
      const l = openLogons[i] as OpenLogon;
      openLogons[i] = openLogons[openLogons.length - 1] as OpenLogon;
      openLogons.pop();
      push({ ts: 0, k: 'logoff', seq: 0, user: l.user, userName: l.userName, domain: l.domain, logonType: l.logonType, logonId: l.logonId, ok: true });
      return;
    }
    logonCounter += between(rng, 1, 4096);
    const logonId = `0x${logonCounter.toString(16)}`;
    const r = rng();
    if (r < 0.08) {
      // A failed remote logon attempt (4625).
      push({
        ts: 0,
        k: 'logon',
        seq: 0,
        pg: lsass.pg,
        pid: lsass.pid,
        user: 'S-1-0-0',
        userName: pick(rng, ['administrator', 'admin', userName, 'guest']),
        domain,
        logonType: rng() < 0.5 ? 3 : 10,
        logonId: '0x0',
        srcIp: ipFromHash(randU32(rng), [45, 91, 185, 193, 10]),
        ok: false,
      });
      return;
    }
    let l: OpenLogon;
    let srcIp: string | undefined;
    if (r < 0.55) {
      l = { userName: rng() < 0.7 ? userName : 'svc_backup', domain, logonType: 3, logonId, user: userSid };
      srcIp = `10.0.${between(rng, 0, 15)}.${between(rng, 1, 250)}`;
    } else if (r < 0.8) {
      l = { userName: 'SYSTEM', domain: 'NT AUTHORITY', logonType: 5, logonId, user: SYSTEM_SID };
    } else {
      // Unlock of the interactive session.
      l = { userName, domain, logonType: 7, logonId, user: userSid };
      srcIp = '127.0.0.1';
    }
    if (openLogons.length < 32 && l.logonType !== 5) openLogons.push(l);
    if (srcIp !== undefined) {
      push({ ts: 0, k: 'logon', seq: 0, pg: lsass.pg, pid: lsass.pid, user: l.user, userName: l.userName, domain: l.domain, logonType: l.logonType, logonId: l.logonId, srcIp, ok: true });
    } else {
      push({ ts: 0, k: 'logon', seq: 0, pg: lsass.pg, pid: lsass.pid, user: l.user, userName: l.userName, domain: l.domain, logonType: l.logonType, logonId: l.logonId, ok: true });
    }
  }

  function usbEvent(): void {
    if (usb) {
      const u = usb;
      usb = undefined;
      push(usbFrame('usb.disconnect', u));
      return;
    }
    const device = pick(rng, USB_DEVICES);
    const serial = `${hex32(randU32(rng)).toUpperCase()}${hex16(randU32(rng)).toUpperCase()}`;
    usb = {
      device,
      serial,
      instanceId: `USB\\VID_${device.vendorId.toUpperCase()}&PID_${device.productId.toUpperCase()}\\${serial}`,
      drive: device.storage ? 'E:' : undefined,
    };
    push(usbFrame('usb.connect', usb));
  }

  function usbFrame(kind: 'usb.connect' | 'usb.disconnect', u: ConnectedUsb): TrailEvent {
    const ev: TrailEvent = {
      ts: 0,
      k: kind,
      seq: 0,
      user: userSid,
      instanceId: u.instanceId,
      vendorId: u.device.vendorId,
      productId: u.device.productId,
      serial: u.serial,
      vendor: u.device.vendor,
      model: u.device.model,
      type: u.device.type,
    };
    if (u.drive !== undefined) ev.drive = u.drive;
    return ev;
  }

  /** A browser download of a malicious file, its execution, and the AV's verdict. */
  function detectionChain(): void {
    let browser = findLive('chrome') ?? findLive('edge');
    if (!browser) browser = spawn(explorer, image(rng() < 0.75 ? 'chrome' : 'edge'));
    const badHost = hostEntry({ name: pick(rng, BAD_HOSTS), port: 443, proto: 'tcp' });
    const fileName = pick(rng, BAD_FILES);
    const path = `${cat.profile}\\Downloads\\${fileName}`;
    const sha256 = randomSha(rng);
    const size = between(rng, 90_000, 4_000_000);
    const originUrl = `https://${badHost.name}/d/${hex32(randU32(rng))}/${encodeURIComponent(fileName)}`;
    dnsEvent(browser, badHost);
    connEvent(browser, badHost);
    push({
      ts: 0,
      k: 'file.create',
      seq: 0,
      pg: browser.pg,
      pid: browser.pid,
      user: browser.user,
      path,
      sha256,
      size,
      vol: 'fixed',
      originUrl,
      referrerUrl: pick(rng, ['https://mail.google.com/', 'https://outlook.office365.com/', `https://${badHost.name}/`, 'https://www.google.com/']),
      zone: 3,
    });
    const threat = pick(rng, THREATS);
    const r = rng();
    const action = r < 0.3 ? 'blocked' : r < 0.8 ? 'quarantined' : 'allowed';
    if (action === 'blocked') {
      // The user double-clicks it; the AV blocks the execution (no process starts).
      push({ ts: 0, k: 'av.detect', seq: 0, pg: explorer.pg, pid: explorer.pid, user: userSid, engine: 'Microsoft Defender Antivirus', threat, path, sha256, action });
      detections++;
      return;
    }
    const mal = spawn(explorer, image('malware'), { image: path, cmd: `"${path}"`, sha256, cwd: `${cat.profile}\\Downloads\\` });
    // Persistence: a copy in AppData and a Run key pointing at it.
    const dropDir = `${cat.profile}\\AppData\\Roaming\\${hex32(randU32(rng)).slice(0, 6)}`;
    const dropped = `${dropDir}\\${fileName.replace(/\.[a-z]+$/i, '')}.exe`;
    push({ ts: 0, k: 'file.create', seq: 0, pg: mal.pg, pid: mal.pid, user: mal.user, path: dropped, sha256, size, vol: 'fixed' });
    push({
      ts: 0,
      k: 'reg.set',
      seq: 0,
      pg: mal.pg,
      pid: mal.pid,
      user: mal.user,
      key: `${userHivePrefix}\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`,
      value: 'WindowsUpdateHelper',
      dtype: 'REG_SZ',
      data: `"${dropped}"`,
    });
    const c2 = hostEntry({ name: pick(rng, BAD_HOSTS), port: pick(rng, [443, 8443, 4444]), proto: 'tcp' });
    dnsEvent(mal, c2);
    connEvent(mal, c2);
    push({ ts: 0, k: 'av.detect', seq: 0, pg: mal.pg, pid: mal.pid, user: mal.user, engine: 'Microsoft Defender Antivirus', threat, path, sha256, action });
    detections++;
    if (action === 'quarantined') {
      end(mal, 1);
      push({ ts: 0, k: 'file.delete', seq: 0, pg: defender.pg, pid: defender.pid, user: defender.user, path });
      push({ ts: 0, k: 'file.delete', seq: 0, pg: defender.pg, pid: defender.pid, user: defender.user, path: dropped });
    }
    // 'allowed': the process stays alive and keeps acting on its budget.
  }

  function spawnFromRoot(): void {
    const parent = rng() < 0.85 ? explorer : rng() < 0.6 ? services : (roots[ROOT_IDS.indexOf('svchostNetsvcs')] as Proc);
    if (!spawnChild(parent)) act(parent);
  }

  function produce(): void {
    // Chains start only with room in the process table, so a very high rate cannot grow it without bound.
    if (detectRate > 0 && rng() < detectRate && nonRootLive < MAX_LIVE) {
      detectionChain();
      return;
    }
    const r = rng();
    if (r < SESSION_RATE) {
      sessionEvent();
      return;
    }
    if (r < SESSION_RATE + USB_RATE) {
      usbEvent();
      return;
    }
    if (nonRootLive < MIN_LIVE || (r < SESSION_RATE + USB_RATE + SPAWN_RATE && nonRootLive < MAX_LIVE)) {
      spawnFromRoot();
      return;
    }
    const p = live[Math.floor(rng() * live.length)] as Proc;
    if (!p.root && p.budget <= 0) {
      end(p, rng() < 0.95 ? 0 : pick(rng, [1, 259, -1073741510]));
      return;
    }
    p.budget--;
    act(p);
  }

  function takeNext(): TrailEvent {
    while (pendingHead >= pending.length) {
      if (pendingHead > 0) {
        pending = [];
        pendingHead = 0;
      }
      produce();
    }
    const ev = pending[pendingHead] as TrailEvent;
    pending[pendingHead] = undefined;
    pendingHead++;
    return ev;
  }

  function next(count: number, firstSeq: number, nowMs: number): TrailEvent[] {
    const n = Math.max(0, Math.floor(count));
    const out = new Array<TrailEvent>(n);
    let start = lastNowMs ?? nowMs - n * FIRST_CALL_GAP_MS;
    if (start > nowMs) start = nowMs;
    const span = nowMs - start;
    currentNowMs = nowMs;
    for (let i = 0; i < n; i++) {
      // (i + u) / n is strictly increasing in i, so timestamps are ordered before the clamp.
      let ts = start + Math.floor(((i + rng()) * span) / n) + 1;
      if (ts > nowMs) ts = nowMs;
      if (ts < lastTs) ts = lastTs;
      lastTs = ts;
      const ev = takeNext();
      ev.ts = ts;
      ev.seq = firstSeq + i;
      if (ev.k === 'file.read') {
        // Reads are merged per process and path: `count` reads from ts to tsLast.
        ev.tsLast = (ev.count as number) === 1 ? ts : Math.min(Math.max(currentNowMs, ts), ts + between(rng, 1, 3000));
      }
      out[i] = ev;
    }
    if (nowMs > (lastNowMs ?? Number.NEGATIVE_INFINITY)) lastNowMs = nowMs;
    return out;
  }

  return {
    next,
    roots: roots.map((p) => ({ pg: p.pg, pid: p.pid, image: p.image, cmd: p.cmd, user: p.user })),
    get detections() {
      return detections;
    },
    userSid,
    userName,
  };
}

/**
 * A password-guessing burst for the analytics thresholds (issue 16): `n`
 * failed remote logons (Security 4625, `ok: false`) against one account from
 * one address, 200 ms apart from `ts`, with seq `firstSeq`… Outside the
 * generator's own stream, so a run with bursts keeps every other event the
 * same.
 */
export function failedLogonBurst(n: number, firstSeq: number, ts: number, srcIp: string): TrailEvent[] {
  const out: TrailEvent[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ ts: ts + i * 200, k: 'logon', seq: firstSeq + i, user: 'S-1-0-0', userName: 'administrator', domain: 'CORP', logonType: 3, logonId: '0x0', srcIp, ok: false });
  }
  return out;
}

/** A USB device to insert on purpose (simulator option `usbInsertions`, device-control tests). */
export interface UsbInsertion {
  vendorId: string;
  productId: string;
  serial: string;
  vendor?: string;
  model?: string;
  /** `storage`, `hid`, `phone`…; a storage device gets drive `E:`. Default `storage`. */
  type?: string;
}

/**
 * The `usb.connect` event of an inserted device, shaped as the generator's own
 * (docs/EVENTS.md); `ts` and `seq` are set by the caller.
 */
export function usbInsertEvent(device: UsbInsertion, user?: string): TrailEvent {
  const type = device.type ?? 'storage';
  const event: TrailEvent = {
    ts: 0,
    k: 'usb.connect',
    seq: 0,
    instanceId: `USB\\VID_${device.vendorId.toUpperCase()}&PID_${device.productId.toUpperCase()}\\${device.serial}`,
    vendorId: device.vendorId,
    productId: device.productId,
    serial: device.serial,
    vendor: device.vendor ?? 'Generic',
    model: device.model ?? 'USB device',
    type,
  };
  if (user !== undefined) event.user = user;
  if (type === 'storage') event.drive = 'E:';
  return event;
}
