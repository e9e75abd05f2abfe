/**
 * The default verdict rules, as data. Each rule has an id, a description and
 * either a weight (summed into a score) or a decisive outcome, and a condition
 * over the report's sections and facts (see rule-types.ts). Thresholds: a
 * score of 60 or more is black, -40 or less is white (-50 or less: a confident
 * white), anything between is gray; a decisive black wins over everything,
 * then a decisive white.
 */
import type { RuleSet } from './rule-types.js';

const OFFICE_PDF_BROWSER = [
  'winword.exe',
  'excel.exe',
  'powerpnt.exe',
  'outlook.exe',
  'msaccess.exe',
  'mspub.exe',
  'onenote.exe',
  'acrord32.exe',
  'acrobat.exe',
  'foxitreader.exe',
  'foxitpdfreader.exe',
  'chrome.exe',
  'msedge.exe',
  'firefox.exe',
  'iexplore.exe',
  'brave.exe',
  'opera.exe',
];

const SCRIPT_HOSTS_AND_LOLBINS = [
  'powershell.exe',
  'pwsh.exe',
  'cmd.exe',
  'wscript.exe',
  'cscript.exe',
  'mshta.exe',
  'rundll32.exe',
  'regsvr32.exe',
  'certutil.exe',
  'bitsadmin.exe',
  'msiexec.exe',
  'installutil.exe',
  'regasm.exe',
  'msbuild.exe',
];

const PROCESS_SECTIONS = ['chain', 'descendants'] as const;

export const DEFAULT_RULES: RuleSet = {
  thresholds: { black: 60, white: -40, confidentWhite: -50 },
  rules: [
    {
      id: 'intel.sha256',
      description: 'The detected file or a process of its chain has a hash on the threat-intelligence list.',
      outcome: 'black',
      when: { any: [{ section: 'attributes', where: [{ field: 'sha256', intel: 'sha256' }] }, { section: PROCESS_SECTIONS, where: [{ field: 'sha256', intel: 'sha256' }] }] },
    },
    {
      id: 'intel.domain',
      description: 'The detected process tree contacted a domain on the threat-intelligence list.',
      weight: 60,
      when: { any: [{ section: 'network', where: [{ field: 'qname', intel: 'domain' }] }, { section: 'network', where: [{ field: 'rhost', intel: 'domain' }] }] },
    },
    {
      id: 'intel.ip',
      description: 'The detected process tree connected to an IP address on the threat-intelligence list.',
      weight: 60,
      when: { section: 'network', where: [{ field: 'rip', intel: 'ip' }] },
    },
    {
      id: 'intel.origin-domain',
      description: 'The detected file was downloaded from a domain on the threat-intelligence list.',
      weight: 60,
      when: { section: 'origin', where: [{ field: 'originUrl', intel: 'domain' }] },
    },
    {
      id: 'origin.internet',
      description: 'The detected file came from the internet (download origin or Mark of the Web).',
      weight: 15,
      when: { fact: 'originKind', in: ['internet'] },
    },
    {
      id: 'origin.mail',
      description: 'The detected file was written by a mail client (attachment).',
      weight: 20,
      when: { fact: 'originKind', in: ['mail'] },
    },
    {
      id: 'origin.removable',
      description: 'The detected file came from a USB or other removable volume.',
      weight: 15,
      when: { fact: 'originKind', in: ['removable'] },
    },
    {
      id: 'origin.script-download',
      description: 'The detected file was written by a script host or LOLBin (a download by a script).',
      weight: 20,
      when: { fact: 'originKind', in: ['script'] },
    },
    {
      id: 'chain.document-spawns-script',
      description: 'An Office application, PDF reader or browser started a script host or LOLBin in the chain.',
      weight: 35,
      when: { section: PROCESS_SECTIONS, where: [{ field: 'pimage', basenameIn: OFFICE_PDF_BROWSER }, { field: 'image', basenameIn: SCRIPT_HOSTS_AND_LOLBINS }] },
    },
    {
      id: 'lolbin.powershell-encoded',
      description: 'PowerShell ran an encoded command (-enc / -EncodedCommand).',
      weight: 30,
      when: { section: PROCESS_SECTIONS, where: [{ field: 'image', basenameIn: ['powershell.exe', 'pwsh.exe'] }, { field: 'cmd', matches: '\\s[-/]e(c|nc|ncodedcommand|ncoded|ncode|nco)?\\s' }] },
    },
    {
      id: 'lolbin.powershell-download',
      description: 'PowerShell downloaded content (DownloadString / DownloadFile / Invoke-WebRequest / iwr).',
      weight: 25,
      when: { section: PROCESS_SECTIONS, where: [{ field: 'image', basenameIn: ['powershell.exe', 'pwsh.exe'] }, { field: 'cmd', matches: 'downloadstring|downloadfile|invoke-webrequest|\\biwr\\b|start-bitstransfer|net\\.webclient' }] },
    },
    {
      id: 'lolbin.mshta',
      description: 'mshta ran remote or inline script.',
      weight: 25,
      when: { section: PROCESS_SECTIONS, where: [{ field: 'image', basenameIn: ['mshta.exe'] }, { field: 'cmd', matches: 'https?:|javascript:|vbscript:' }] },
    },
    {
      id: 'lolbin.rundll32-regsvr32',
      description: 'rundll32 or regsvr32 loaded script or a remote scriptlet.',
      weight: 25,
      when: { section: PROCESS_SECTIONS, where: [{ field: 'image', basenameIn: ['rundll32.exe', 'regsvr32.exe'] }, { field: 'cmd', matches: 'javascript:|scrobj|/i:https?:|https?://' }] },
    },
    {
      id: 'lolbin.certutil-download',
      description: 'certutil downloaded or decoded a file.',
      weight: 30,
      when: { section: PROCESS_SECTIONS, where: [{ field: 'image', basenameIn: ['certutil.exe'] }, { field: 'cmd', matches: '-urlcache|-split|-decode|https?://' }] },
    },
    {
      id: 'persistence.run-key',
      description: 'A Run or RunOnce registry value was written.',
      weight: 30,
      when: { section: 'registry', where: [{ field: 'key', matches: '\\\\currentversion\\\\run(once)?(\\\\|$)' }] },
    },
    {
      id: 'persistence.service',
      description: 'A service was registered in the registry.',
      weight: 25,
      // A service is its key under Services plus an ImagePath / ServiceDll. Deeper keys (Tcpip\Parameters, bam, dam)
      // are opened with create rights by every system process (Sysmon logs that as CreateKey): no service.
      when: {
        any: [
          { section: 'registry', where: [{ field: 'k', equals: 'reg.create' }, { field: 'key', matches: '\\\\currentcontrolset\\\\services\\\\(?!bam$|dam$)[^\\\\]+$' }] },
          // Mappers that keep the value name in the key (Sysmon's TargetObject as is).
          { section: 'registry', where: [{ field: 'key', matches: '\\\\currentcontrolset\\\\services\\\\[^\\\\]+(\\\\parameters)?\\\\(imagepath|servicedll)$' }] },
          {
            section: 'registry',
            where: [
              { field: 'k', equals: 'reg.set' },
              { field: 'key', matches: '\\\\currentcontrolset\\\\services\\\\[^\\\\]+(\\\\parameters)?$' },
              { field: 'value', matches: '^(imagepath|servicedll)$' },
            ],
          },
        ],
      },
    },
    {
      id: 'persistence.scheduled-task',
      description: 'A scheduled task was created.',
      weight: 25,
      when: {
        any: [
          { section: 'descendants', where: [{ field: 'image', basenameIn: ['schtasks.exe'] }, { field: 'cmd', matches: '/create' }] },
          { section: 'filesWritten', where: [{ field: 'path', matches: '\\\\windows\\\\system32\\\\tasks\\\\' }] },
          { section: 'registry', where: [{ field: 'key', matches: '\\\\schedule\\\\taskcache\\\\' }] },
        ],
      },
    },
    {
      id: 'persistence.startup-folder',
      description: 'A file was written to a Startup folder.',
      weight: 25,
      when: { section: 'filesWritten', where: [{ field: 'path', matches: '\\\\start menu\\\\programs\\\\startup\\\\' }] },
    },
    {
      id: 'network.raw-ip',
      description: 'The process tree connected out to a public IP address with no DNS name.',
      weight: 15,
      when: { section: 'network', where: [{ field: 'k', equals: 'net.conn' }, { field: 'dir', equals: 'out' }, { field: 'rip', publicIpWithoutName: true }] },
    },
    {
      id: 'execution.executed',
      description: 'The detected file ran before the antivirus acted.',
      weight: 10,
      when: { fact: 'executed', in: [true] },
    },
    {
      id: 'execution.blocked',
      description: 'The antivirus blocked or quarantined the file before it ran.',
      weight: -30,
      when: { all: [{ fact: 'executed', in: [false] }, { fact: 'action', in: ['blocked', 'quarantined'] }] },
    },
    {
      id: 'signer.trusted',
      description: 'The detected file carries a trusted signature.',
      weight: -40,
      when: { section: 'attributes', where: [{ field: 'sig', equals: 'trusted' }] },
    },
  ],
};
