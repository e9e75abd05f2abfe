import { describe, expect, it } from 'vitest';
import { defenderAction, defenderPath, mapRecord, normalizeGuid, parseHashes, parseQueryResults, parseUtcTime, parseZoneIdentifier, sha256FromHashes, type ImportedEvent } from './sysmon-mapper.js';

const HOST = 'PC-0001.corp.example';
const T = '2024-01-02 03:04:05.678';
const TS = Date.UTC(2024, 0, 2, 3, 4, 5, 678);
const PG = '{c37ebd7d-9f30-68ed-7a04-000000002a00}';
const PPG = '{c37ebd7d-9f2e-68ed-6a04-000000002a00}';
const TPG = '{c37ebd7d-19f4-68ed-0c00-000000002a00}';
const SHA = 'd3622311208afc6d3271052b8b90ab345d27766b9696797dce373ed148c5b42e';
const HASHES = `SHA1=3395856CE81F2B7382DEE72602F798B642F14140,MD5=0F343B0931126A20F133D67C2B018A3B,SHA256=${SHA.toUpperCase()},IMPHASH=F34D5F2D4577ED6D9CEEC516C1F5A744`;
const USER = 'CORP\\tanaka';
const SID = 'S-1-5-21-1004336348-1177238915-682003330-1103';
const RUN = `HKU\\${SID}\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`;

type Source = 'sysmon' | 'security' | 'defender' | 'system';
const PROVIDERS: Record<Source, [string, string]> = {
  sysmon: ['Microsoft-Windows-Sysmon', 'Microsoft-Windows-Sysmon/Operational'],
  security: ['Microsoft-Windows-Security-Auditing', 'Security'],
  defender: ['Microsoft-Windows-Windows Defender', 'Microsoft-Windows-Windows Defender/Operational'],
  system: ['Service Control Manager', 'System'],
};

/** The flat NXLog / OTRF layout: envelope and event data side by side (the envelope's ProcessID is Sysmon's own). */
function flat(id: number, data: Record<string, unknown>, source: Source = 'sysmon'): Record<string, unknown> {
  const [provider, channel] = PROVIDERS[source];
  return {
    EventTime: '2024-01-02 12:04:05',
    Hostname: HOST,
    EventType: 'INFO',
    EventID: id,
    SourceName: provider,
    Channel: channel,
    ProcessID: 2360,
    ThreadID: 3000,
    UserID: 'S-1-5-18',
    '@timestamp': '2024-01-02T03:04:09.000Z',
    ...data,
  };
}

/** Winlogbeat: the event data under winlog.event_data, the event ID as a string. */
function winlogbeat(id: number, data: Record<string, unknown>, source: Source = 'sysmon'): Record<string, unknown> {
  const [provider, channel] = PROVIDERS[source];
  return {
    '@timestamp': '2024-01-02T03:04:09.000Z',
    event: { code: String(id), provider },
    host: { name: 'pc-0001' },
    winlog: { channel, computer_name: HOST, event_id: String(id), provider_name: provider, process: { pid: 2360 }, event_data: data },
  };
}

const sysmon = (data: Record<string, unknown>) => ({ UtcTime: T, ...data });

/** [name, event ID, source, event data, expected kind, expected fields] */
const CASES: [string, number, Source, Record<string, unknown>, string, Record<string, unknown>][] = [
  [
    'process create keeps the parent fields',
    1,
    'sysmon',
    sysmon({ RuleName: '-', ProcessGuid: PG, ProcessId: '7344', Image: 'C:\\Windows\\System32\\cmd.exe', CommandLine: 'cmd.exe /c whoami', CurrentDirectory: 'C:\\Users\\tanaka\\', User: USER, IntegrityLevel: 'Medium', Hashes: HASHES, ParentProcessGuid: PPG, ParentProcessId: '5916', ParentImage: 'C:\\Windows\\explorer.exe', ParentCommandLine: 'C:\\Windows\\Explorer.EXE' }),
    'proc.start',
    { ts: TS, pg: PG, pid: 7344, user: USER, image: 'C:\\Windows\\System32\\cmd.exe', cmd: 'cmd.exe /c whoami', sha256: SHA, ppg: PPG, ppid: 5916, pimage: 'C:\\Windows\\explorer.exe', pcmd: 'C:\\Windows\\Explorer.EXE', cwd: 'C:\\Users\\tanaka\\', integrity: 'Medium', src: 'sysmon:1' },
  ],
  [
    'file creation time changed',
    2,
    'sysmon',
    sysmon({ ProcessGuid: PG, ProcessId: '7344', Image: 'C:\\x\\t.exe', TargetFilename: 'C:\\Users\\tanaka\\a.dll', CreationUtcTime: '2019-03-01 00:00:00.000', PreviousCreationUtcTime: '2024-01-02 03:04:05.000', User: USER }),
    'file.time',
    { path: 'C:\\Users\\tanaka\\a.dll', ctime: Date.UTC(2019, 2, 1), prevCtime: Date.UTC(2024, 0, 2, 3, 4, 5) },
  ],
  [
    'outbound connection',
    3,
    'sysmon',
    sysmon({ ProcessGuid: PG, ProcessId: '7344', Image: 'C:\\x.exe', User: USER, Protocol: 'tcp', Initiated: 'true', SourceIp: '10.0.4.23', SourcePort: '51234', DestinationIp: '203.0.113.45', DestinationHostname: 'cdn.example.net', DestinationPort: '443' }),
    'net.conn',
    { proto: 'tcp', dir: 'out', lip: '10.0.4.23', lport: 51234, rip: '203.0.113.45', rport: 443, rptr: 'cdn.example.net' },
  ],
  [
    'inbound connection',
    3,
    'sysmon',
    sysmon({ ProcessGuid: PG, ProcessId: 4, Protocol: 'udp', Initiated: 'false', SourceIp: '10.0.4.23', SourcePort: '3389', DestinationIp: '10.0.2.17', DestinationPort: '50000', DestinationHostname: '-' }),
    'net.conn',
    { proto: 'udp', dir: 'in', lport: 3389, rip: '10.0.2.17', rport: 50000 },
  ],
  ['process terminated', 5, 'sysmon', sysmon({ ProcessGuid: PG, ProcessId: '7344', Image: 'C:\\x.exe', User: USER }), 'proc.end', { pg: PG, pid: 7344, user: USER }],
  [
    'image loaded',
    7,
    'sysmon',
    sysmon({ ProcessGuid: PG, ProcessId: '7344', Image: 'C:\\x.exe', ImageLoaded: 'C:\\Windows\\System32\\wininet.dll', Hashes: HASHES, Signed: 'true', Signature: 'Microsoft Windows', SignatureStatus: 'Valid', User: USER }),
    'image.load',
    { path: 'C:\\Windows\\System32\\wininet.dll', sha256: SHA, signer: 'Microsoft Windows', sig: 'trusted' },
  ],
  [
    'remote thread',
    8,
    'sysmon',
    sysmon({ SourceProcessGuid: PG, SourceProcessId: '7344', SourceImage: 'C:\\x.exe', TargetProcessGuid: TPG, TargetProcessId: '836', TargetImage: 'C:\\Windows\\System32\\notepad.exe', NewThreadId: '912', StartAddress: '0x00007FF6A1B2C3D4', StartModule: '-', StartFunction: '-', SourceUser: USER, TargetUser: USER }),
    'proc.remote_thread',
    { pg: PG, pid: 7344, user: USER, tpg: TPG, tpid: 836, timage: 'C:\\Windows\\System32\\notepad.exe', startAddr: '0x00007FF6A1B2C3D4' },
  ],
  [
    'process access',
    10,
    'sysmon',
    sysmon({ SourceProcessGUID: PG, SourceProcessId: '7344', SourceThreadId: '100', SourceImage: 'C:\\x.exe', TargetProcessGUID: TPG, TargetProcessId: '712', TargetImage: 'C:\\Windows\\system32\\lsass.exe', GrantedAccess: '0x1010', CallTrace: 'C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4', SourceUser: USER, TargetUser: 'NT AUTHORITY\\SYSTEM' }),
    'proc.access',
    { pg: PG, pid: 7344, tpg: TPG, tpid: 712, timage: 'C:\\Windows\\system32\\lsass.exe', access: '0x1010', callTrace: 'C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4' },
  ],
  [
    'file created',
    11,
    'sysmon',
    sysmon({ ProcessGuid: PG, ProcessId: '7344', Image: 'C:\\x.exe', TargetFilename: 'C:\\Users\\tanaka\\Downloads\\a.exe', CreationUtcTime: T, User: USER }),
    'file.create',
    { path: 'C:\\Users\\tanaka\\Downloads\\a.exe' },
  ],
  [
    'file created on a share',
    11,
    'sysmon',
    sysmon({ ProcessGuid: PG, TargetFilename: '\\\\fs01\\share\\a.txt' }),
    'file.create',
    { path: '\\\\fs01\\share\\a.txt', vol: 'network' },
  ],
  ['registry key created', 12, 'sysmon', sysmon({ EventType: 'CreateKey', ProcessGuid: PG, ProcessId: '812', Image: 'C:\\x.exe', TargetObject: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Evil', User: USER }), 'reg.create', { key: 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Evil' }],
  ['registry key deleted', 12, 'sysmon', sysmon({ EventType: 'DeleteKey', ProcessGuid: PG, TargetObject: 'HKLM\\SOFTWARE\\Evil' }), 'reg.delete', { key: 'HKLM\\SOFTWARE\\Evil' }],
  ['registry value deleted', 12, 'sysmon', sysmon({ EventType: 'DeleteValue', ProcessGuid: PG, TargetObject: `${RUN}\\Updater` }), 'reg.delete', { key: RUN, value: 'Updater' }],
  [
    'registry value set (string)',
    13,
    'sysmon',
    sysmon({ EventType: 'SetValue', ProcessGuid: PG, ProcessId: '7344', Image: 'C:\\x.exe', TargetObject: `${RUN}\\Updater`, Details: 'C:\\Users\\tanaka\\AppData\\Roaming\\u.exe', User: USER }),
    'reg.set',
    { key: RUN, value: 'Updater', dtype: 'REG_SZ', data: 'C:\\Users\\tanaka\\AppData\\Roaming\\u.exe' },
  ],
  [
    'registry value set (DWORD, long hive name)',
    13,
    'sysmon',
    sysmon({ EventType: 'SetValue', ProcessGuid: PG, TargetObject: '\\REGISTRY\\MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\DisableAntiSpyware', Details: 'DWORD (0x00000001)' }),
    'reg.set',
    { key: 'HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender', value: 'DisableAntiSpyware', dtype: 'REG_DWORD', data: 'DWORD (0x00000001)' },
  ],
  [
    'registry value renamed into a Run key',
    14,
    'sysmon',
    sysmon({ EventType: 'RenameKey', ProcessGuid: PG, TargetObject: `${RUN}\\tmp1`, NewName: 'Updater' }),
    'reg.create',
    { key: `${RUN}\\Updater`, renamedFrom: `${RUN}\\tmp1` },
  ],
  [
    'Zone.Identifier stream: the download origin of the base file',
    15,
    'sysmon',
    sysmon({ ProcessGuid: PG, ProcessId: '4100', Image: 'C:\\chrome.exe', TargetFilename: 'C:\\Users\\tanaka\\Downloads\\a.exe:Zone.Identifier', Hash: HASHES, Contents: '[ZoneTransfer]  ZoneId=3  ReferrerUrl=https://mail.example.net/  HostUrl=https://files.example.net/a.exe  ', User: USER }),
    'file.create',
    { path: 'C:\\Users\\tanaka\\Downloads\\a.exe', zone: 3, originUrl: 'https://files.example.net/a.exe', referrerUrl: 'https://mail.example.net/', motw: true },
  ],
  [
    'other alternate data stream',
    15,
    'sysmon',
    sysmon({ ProcessGuid: PG, TargetFilename: 'C:\\Users\\tanaka\\a.txt:hidden', Hash: HASHES }),
    'file.create',
    { path: 'C:\\Users\\tanaka\\a.txt:hidden', stream: 'hidden', sha256: SHA },
  ],
  [
    'DNS query with a CNAME and an IPv4-mapped answer',
    22,
    'sysmon',
    sysmon({ ProcessGuid: PG, ProcessId: '7344', QueryName: 'cdn-update.example.net', QueryStatus: '0', QueryResults: 'type:  5 edge.example.net;::ffff:203.0.113.45;', Image: 'C:\\x.exe', User: USER }),
    'net.dns',
    { qname: 'cdn-update.example.net', qtype: 'A', answers: ['edge.example.net', '203.0.113.45'], qstatus: 0 },
  ],
  ['file delete (archived)', 23, 'sysmon', sysmon({ ProcessGuid: PG, TargetFilename: 'C:\\Temp\\x.tmp', Hashes: HASHES, IsExecutable: 'false', Archived: 'true' }), 'file.delete', { path: 'C:\\Temp\\x.tmp', sha256: SHA }],
  ['file delete (detected)', 26, 'sysmon', sysmon({ ProcessGuid: PG, TargetFilename: 'C:\\Temp\\y.tmp', Hashes: HASHES }), 'file.delete', { path: 'C:\\Temp\\y.tmp', sha256: SHA }],
  [
    'driver loaded',
    6,
    'sysmon',
    sysmon({ ImageLoaded: 'C:\\Windows\\x.sys', Hashes: HASHES, Signed: 'true', Signature: 'Microsoft Windows', SignatureStatus: 'Valid' }),
    'driver.load',
    { path: 'C:\\Windows\\x.sys', sha256: SHA, signer: 'Microsoft Windows', sig: 'trusted', sigStatus: 'Valid' },
  ],
  ['named pipe created', 17, 'sysmon', sysmon({ EventType: 'CreatePipe', ProcessGuid: PG, ProcessId: '7344', PipeName: '\\PSHost.1', Image: 'C:\\x.exe', User: USER }), 'pipe.create', { pg: PG, pipe: '\\PSHost.1', image: 'C:\\x.exe' }],
  ['named pipe connected', 18, 'sysmon', sysmon({ EventType: 'ConnectPipe', ProcessGuid: PG, PipeName: '\\srvsvc', Image: 'C:\\x.exe' }), 'pipe.connect', { pipe: '\\srvsvc', image: 'C:\\x.exe' }],
  ['unknown Sysmon event (config change) kept as an unknown kind', 16, 'sysmon', sysmon({ Configuration: 'C:\\s.xml', ConfigurationFileHash: '-' }), 'sysmon.16', { data: { UtcTime: T, Configuration: 'C:\\s.xml', ConfigurationFileHash: '-' } }],
  [
    'successful logon',
    4624,
    'security',
    { TargetUserSid: SID, TargetUserName: 'tanaka', TargetDomainName: 'CORP', TargetLogonId: '0x1c8f2a3', LogonType: '3', ProcessId: '0x344', IpAddress: '10.0.2.17', IpPort: '50123' },
    'logon',
    { ts: Date.UTC(2024, 0, 2, 3, 4, 9), user: SID, userName: 'tanaka', domain: 'CORP', logonType: 3, logonId: '0x1c8f2a3', pid: 836, srcIp: '10.0.2.17', ok: true, src: 'security:4624' },
  ],
  [
    'failed logon',
    4625,
    'security',
    { TargetUserSid: 'S-1-0-0', TargetUserName: 'admin', TargetDomainName: 'CORP', LogonType: '10', Status: '0xc000006d', SubStatus: '0xc000006a', IpAddress: '198.51.100.9', ProcessId: '0x0' },
    'logon',
    { user: 'S-1-0-0', userName: 'admin', logonType: 10, srcIp: '198.51.100.9', ok: false, status: '0xc000006d', subStatus: '0xc000006a' },
  ],
  ['logoff', 4634, 'security', { TargetUserSid: SID, TargetUserName: 'tanaka', TargetDomainName: 'CORP', TargetLogonId: '0x1c8f2a3', LogonType: '3' }, 'logoff', { user: SID, userName: 'tanaka', logonType: 3, logonId: '0x1c8f2a3', ok: true }],
  ['other Security event kept as an unknown kind', 4720, 'security', { TargetUserName: 'eve' }, 'security.4720', { data: { TargetUserName: 'eve' } }],
  // The Security / System fallbacks (windows-fallback.ts): the same kinds as Sysmon where Sysmon is absent.
  [
    'Security 4688 process created → proc.start',
    4688,
    'security',
    { SubjectUserSid: SID, SubjectLogonId: '0x14f3c84', NewProcessId: '0x18b8', NewProcessName: 'C:\\Windows\\System32\\cmd.exe', TargetUserSid: 'S-1-0-0', MandatoryLabel: 'S-1-16-12288', ProcessId: '0x1e40', CommandLine: 'cmd.exe /c whoami', ParentProcessName: 'C:\\Windows\\explorer.exe' },
    'proc.start',
    { pid: 0x18b8, user: SID, image: 'C:\\Windows\\System32\\cmd.exe', cmd: 'cmd.exe /c whoami', ppid: 0x1e40, pimage: 'C:\\Windows\\explorer.exe', integrity: 'High', logonId: '0x14f3c84', fallback: true, src: 'security:4688' },
  ],
  [
    'Security 5156 connection permitted → net.conn',
    5156,
    'security',
    { ProcessID: '3304', Application: '\\device\\harddiskvolume2\\users\\a\\x.exe', Direction: '%%14593', SourceAddress: '192.168.2.5', SourcePort: '65353', DestAddress: '203.0.113.8', DestPort: '8443', Protocol: '6' },
    'net.conn',
    { pid: 3304, image: 'C:\\users\\a\\x.exe', proto: 'tcp', dir: 'out', lip: '192.168.2.5', lport: 65353, rip: '203.0.113.8', rport: 8443 },
  ],
  [
    'Security 4663 file write → file.write',
    4663,
    'security',
    { SubjectUserSid: SID, ObjectType: 'File', ObjectName: 'C:\\Users\\a\\x.dll', AccessMask: '0x2', ProcessId: '0x1f0', ProcessName: 'C:\\x.exe' },
    'file.write',
    { pid: 0x1f0, image: 'C:\\x.exe', path: 'C:\\Users\\a\\x.dll', access: '0x2' },
  ],
  [
    'Security 4657 registry value set → reg.set',
    4657,
    'security',
    { ObjectName: '\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run', ObjectValueName: 'upd', OperationType: '%%1905', NewValueType: '%%1873', NewValue: 'C:\\x.exe', ProcessId: '0x1f0', ProcessName: 'C:\\x.exe' },
    'reg.set',
    { key: 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run', value: 'upd', dtype: 'REG_SZ', data: 'C:\\x.exe', pid: 0x1f0 },
  ],
  [
    'Security 4698 scheduled task created → task.create',
    4698,
    'security',
    { SubjectUserSid: SID, TaskName: '\\Updater', TaskContent: '<Task><Actions><Exec><Command>C:\\x.exe</Command><Arguments>-q &amp; run</Arguments></Exec></Actions></Task>' },
    'task.create',
    { task: '\\Updater', command: 'C:\\x.exe -q & run', user: SID },
  ],
  [
    'Defender detection',
    1116,
    'defender',
    { 'Product Name': 'Microsoft Defender Antivirus', 'Detection ID': '{A1B2C3D4-0000-0000-0000-000000000001}', 'Detection Time': '2024-01-02T03:04:05.678Z', 'Threat Name': 'Trojan:Win32/Wacatac.B!ml', 'Severity Name': 'Severe', Path: 'file:_C:\\Users\\tanaka\\Downloads\\a.exe; process:_pid:5128,ProcessStart:133456789012345678', 'Detection User': USER, 'Action Name': 'Not Applicable' },
    'av.detect',
    { ts: TS, engine: 'Microsoft Defender Antivirus', threat: 'Trojan:Win32/Wacatac.B!ml', path: 'C:\\Users\\tanaka\\Downloads\\a.exe', action: 'detected', user: USER, detectionId: '{a1b2c3d4-0000-0000-0000-000000000001}', src: 'defender:1116' },
  ],
  [
    'Defender action taken',
    1117,
    'defender',
    { 'Product Name': 'Microsoft Defender Antivirus', 'Detection Time': '2024-01-02T03:04:05.678Z', 'Threat Name': 'Trojan:Win32/Wacatac.B!ml', Path: 'file:_C:\\Users\\tanaka\\Downloads\\a.exe', 'Action Name': 'Quarantine', 'Action ID': '2' },
    'av.detect',
    { path: 'C:\\Users\\tanaka\\Downloads\\a.exe', action: 'quarantined', src: 'defender:1117' },
  ],
  ['System 7045 service installed → service.install', 7045, 'system', { ServiceName: 'evil', ImagePath: 'C:\\x.exe', StartType: 'auto start' }, 'service.install', { name: 'evil', imagePath: 'C:\\x.exe', startType: 'auto', src: 'system:7045' }],
  ['System 7040 start type changed → service.config', 7040, 'system', { param1: 'Windows Event Log', param2: 'auto start', param3: 'disabled', param4: 'EventLog' }, 'service.config', { name: 'EventLog', from: 'auto', startType: 'disabled' }],
  ['an event of another log kept as an unknown kind', 7036, 'system', { param1: 'x' }, 'winevent.7036', { channel: 'system', data: { param1: 'x' } }],
];

function strip(e: ImportedEvent): Record<string, unknown> {
  const { rid: _rid, ...rest } = e;
  return rest;
}

describe('mapRecord: every event ID in both field styles', () => {
  it.each(CASES)('%s (event %i)', (_name, id, source, data, kind, fields) => {
    const a = mapRecord(flat(id, data, source));
    const b = mapRecord(winlogbeat(id, data, source));
    if (!a.ok || !b.ok) throw new Error(`not mapped: ${JSON.stringify(a)} ${JSON.stringify(b)}`);
    expect(a.host).toBe(HOST);
    expect(a.event.k).toBe(kind);
    expect(a.event).toMatchObject(fields);
    expect(a.event.rid).toMatch(/^[0-9a-f]{24}$/);
    // Same event whatever the layout (the record fingerprints differ: no record numbers here).
    expect(strip(b.event)).toEqual(strip(a.event));
    // Nothing undefined: MessagePack would write it as nil.
    expect(Object.values(a.event).some((v) => v === undefined)).toBe(false);
  });

  it('carries what Sigma rules read: version info, all hashes, parent user, logon ID and the acting image', () => {
    const start = mapRecord(
      flat(1, sysmon({ ProcessGuid: PG, ProcessId: '7344', Image: 'C:\\Windows\\System32\\reg.exe', CommandLine: 'reg add x', User: USER, Hashes: HASHES, OriginalFileName: 'reg.exe', Description: 'Registry Console Tool', Product: 'Microsoft® Windows® Operating System', Company: 'Microsoft Corporation', FileVersion: '10.0.26100.1', LogonId: '0x3144c', ParentProcessGuid: PPG, ParentImage: 'C:\\p.exe', ParentUser: 'CORP\\admin' })),
    );
    expect(start).toMatchObject({
      ok: true,
      event: { originalFileName: 'reg.exe', description: 'Registry Console Tool', product: 'Microsoft® Windows® Operating System', company: 'Microsoft Corporation', fileVersion: '10.0.26100.1', md5: '0f343b0931126a20f133d67c2b018a3b', sha1: '3395856ce81f2b7382dee72602f798b642f14140', imphash: 'f34d5f2d4577ed6d9ceec516c1f5a744', sha256: SHA, logonId: '0x3144c', puser: 'CORP\\admin' },
    });
    const file = mapRecord(flat(11, sysmon({ ProcessGuid: PG, Image: 'C:\\x.exe', TargetFilename: 'C:\\a.txt' })));
    expect(file).toMatchObject({ ok: true, event: { k: 'file.create', image: 'C:\\x.exe' } });
    const access = mapRecord(flat(10, sysmon({ SourceProcessGUID: PG, SourceImage: 'C:\\x.exe', TargetProcessGUID: TPG, TargetImage: 'C:\\lsass.exe', TargetUser: 'NT AUTHORITY\\SYSTEM' })));
    expect(access).toMatchObject({ ok: true, event: { k: 'proc.access', image: 'C:\\x.exe', tuser: 'NT AUTHORITY\\SYSTEM' } });
    const motw = mapRecord(flat(15, sysmon({ ProcessGuid: PG, TargetFilename: 'C:\\d\\a.exe:Zone.Identifier', Contents: '[ZoneTransfer]  ZoneId=3' })));
    expect(motw).toMatchObject({ ok: true, event: { path: 'C:\\d\\a.exe', stream: 'Zone.Identifier', contents: '[ZoneTransfer]  ZoneId=3', zone: 3 } });
  });

  it('reads the XML-as-JSON layout of evtx dumpers too', () => {
    const m = mapRecord({
      Event: {
        System: { Provider: { '#attributes': { Name: 'Microsoft-Windows-Sysmon' } }, EventID: 3, Channel: 'Microsoft-Windows-Sysmon/Operational', Computer: HOST, EventRecordID: 77, TimeCreated: { '#attributes': { SystemTime: '2024-01-02T03:04:09.000000Z' } } },
        EventData: { UtcTime: T, ProcessGuid: PG, Protocol: 'tcp', Initiated: 'true', SourceIp: '10.0.0.5', SourcePort: '50000', DestinationIp: '198.51.100.7', DestinationPort: '443' },
      },
    });
    expect(m).toMatchObject({ ok: true, host: HOST, event: { ts: TS, k: 'net.conn', pg: PG, rip: '198.51.100.7', src: 'sysmon:3' } });
  });

  it('falls back to the ECS fields of Winlogbeat’s Sysmon processor', () => {
    const m = mapRecord({
      '@timestamp': '2024-01-02T03:04:05.678Z',
      process: { entity_id: PG.slice(1, -1), pid: 7344, executable: 'C:\\x.exe', command_line: 'x.exe -a', parent: { entity_id: PPG, executable: 'C:\\Windows\\explorer.exe' } },
      winlog: { channel: 'Microsoft-Windows-Sysmon/Operational', computer_name: HOST, event_id: 1, event_data: { IntegrityLevel: 'High' } },
    });
    expect(m).toMatchObject({ ok: true, event: { ts: TS, k: 'proc.start', pg: PG, pid: 7344, image: 'C:\\x.exe', cmd: 'x.exe -a', ppg: PPG, pimage: 'C:\\Windows\\explorer.exe', integrity: 'High' } });
  });

  it('takes the registry event type from the message when NXLog overwrote EventType with the level', () => {
    const m = mapRecord(flat(12, { UtcTime: T, ProcessGuid: PG, TargetObject: 'HKLM\\SOFTWARE\\Evil', Message: 'Registry object added or deleted:\r\nRuleName: -\r\nEventType: DeleteKey\r\n' }));
    expect(m).toMatchObject({ ok: true, event: { k: 'reg.delete', key: 'HKLM\\SOFTWARE\\Evil' } });
  });
});

describe('mapRecord: time, identity and hosts', () => {
  it('uses UtcTime, not the local EventTime nor the shipper’s @timestamp', () => {
    const m = mapRecord(flat(5, { UtcTime: T, ProcessGuid: PG }));
    expect(m).toMatchObject({ ok: true, event: { ts: TS } });
  });

  it('uses @timestamp for events without UtcTime, never EventTime', () => {
    const m = mapRecord({ EventID: 4634, Hostname: HOST, Channel: 'Security', EventTime: '2024-01-02 12:04:05', TargetUserSid: SID });
    expect(m).toEqual({ ok: false, reason: 'no_time', eventId: 4634 });
  });

  it('reads the PID of the event data, not the envelope’s (the Sysmon service)', () => {
    const m = mapRecord(flat(5, { UtcTime: T, ProcessGuid: PG, ProcessId: '7344' }));
    expect(m).toMatchObject({ ok: true, event: { pid: 7344 } });
    const noPid = mapRecord(flat(5, { UtcTime: T, ProcessGuid: PG }));
    expect(noPid.ok).toBe(true);
    expect(noPid.ok ? noPid.event.pid : 'not mapped').toBeUndefined();
  });

  it('gives the same fingerprint to the same record in both layouts when it has a record number', () => {
    const data = { UtcTime: T, ProcessGuid: PG, ProcessId: '1' };
    const a = mapRecord({ ...flat(5, data), RecordNumber: 4711 });
    const w = winlogbeat(5, data);
    (w.winlog as Record<string, unknown>).record_id = 4711;
    const b = mapRecord(w);
    expect(a.ok && b.ok && a.event.rid === b.event.rid).toBe(true);
    const c = mapRecord({ ...flat(5, data), RecordNumber: 4712 });
    expect(a.ok && c.ok && a.event.rid !== c.event.rid).toBe(true);
  });

  it('names the host from --computer when given, else from the record', () => {
    expect(mapRecord(flat(5, { UtcTime: T, ProcessGuid: PG }), { computer: 'PC-9' })).toMatchObject({ ok: true, host: 'PC-9' });
    const { Hostname: _h, ...noHost } = flat(5, { UtcTime: T, ProcessGuid: PG });
    expect(mapRecord(noHost)).toEqual({ ok: false, reason: 'no_computer', eventId: 5 });
    expect(mapRecord(noHost, { computer: 'PC-9' })).toMatchObject({ ok: true, host: 'PC-9' });
  });

  it('finds the computer name of flat records shipped through Logstash', () => {
    expect(mapRecord({ EventID: 5, host: { name: 'PC-7' }, UtcTime: T, ProcessGuid: PG })).toMatchObject({ ok: true, host: 'PC-7' });
  });

  it('infers the log from the event ID when the record names none', () => {
    expect(mapRecord({ EventID: 1, Computer: HOST, UtcTime: T, Image: 'C:\\x.exe' })).toMatchObject({ ok: true, event: { k: 'proc.start', src: 'sysmon:1' } });
    expect(mapRecord({ EventID: 4624, Computer: HOST, '@timestamp': '2024-01-02T03:04:05Z', TargetUserName: 'a' })).toMatchObject({ ok: true, event: { k: 'logon' } });
  });

  it.each([
    ['not an object', [1, 2], 'not_an_object'],
    ['no event ID', { Hostname: HOST, UtcTime: T }, 'no_event_id'],
    ['an event ID that is not a number', { EventID: 'one', Hostname: HOST, UtcTime: T }, 'no_event_id'],
    ['no time at all', { EventID: 1, Hostname: HOST, Image: 'C:\\x.exe' }, 'no_time'],
    ['an unparseable UtcTime', { EventID: 1, Hostname: HOST, UtcTime: 'yesterday', Image: 'C:\\x.exe' }, 'no_time'],
    ['a process create without an image', { EventID: 1, Hostname: HOST, UtcTime: T }, 'missing_field'],
    ['a file create without a path', { EventID: 11, Hostname: HOST, UtcTime: T, ProcessGuid: PG }, 'missing_field'],
    ['a connection without a destination', { EventID: 3, Hostname: HOST, UtcTime: T, ProcessGuid: PG }, 'missing_field'],
    ['a DNS event without a name', { EventID: 22, Hostname: HOST, UtcTime: T, ProcessGuid: PG }, 'missing_field'],
    ['a registry event without a target', { EventID: 13, Hostname: HOST, UtcTime: T, ProcessGuid: PG }, 'missing_field'],
  ])('skips a record with %s', (_name, record, reason) => {
    expect(mapRecord(record)).toMatchObject({ ok: false, reason });
  });
});

describe('field values', () => {
  it.each([
    ['{C37EBD7D-9F30-68ED-7A04-000000002A00}', PG],
    ['c37ebd7d-9f30-68ed-7a04-000000002a00', PG],
    [' {c37ebd7d-9f30-68ed-7a04-000000002a00} ', PG],
    ['{00000000-0000-0000-0000-000000000000}', undefined],
    ['not-a-guid', undefined],
    [42, undefined],
  ])('normalizes the GUID %j', (input, want) => {
    expect(normalizeGuid(input)).toBe(want);
  });

  it.each([
    ['2024-01-02 03:04:05.678', TS],
    ['2024-01-02 03:04:05.6789012', TS],
    ['2024-01-02T03:04:05.678Z', TS],
    ['2024-01-02T12:04:05.678+09:00', TS],
    ['2024-01-02T03:04:05.678', TS],
    ['2024-01-02 03:04:05', Date.UTC(2024, 0, 2, 3, 4, 5)],
    [TS, TS],
    [TS / 1000, TS],
    ['2024-02-31 00:00:00.000', undefined],
    ['02/01/2024 03:04', undefined],
    ['', undefined],
  ])('parses the time %j', (input, want) => {
    expect(parseUtcTime(input)).toBe(want);
  });

  it('reads every hash out of Sysmon hashes', () => {
    expect(parseHashes(HASHES)).toEqual({ sha1: '3395856ce81f2b7382dee72602f798b642f14140', md5: '0f343b0931126a20f133d67c2b018a3b', sha256: SHA, imphash: 'f34d5f2d4577ed6d9ceec516c1f5a744' });
    expect(parseHashes(SHA.toUpperCase())).toEqual({ sha256: SHA });
    expect(parseHashes('MD5=short')).toEqual({});
  });

  it('reads SHA256 out of Sysmon hashes', () => {
    expect(sha256FromHashes(HASHES)).toBe(SHA);
    expect(sha256FromHashes(SHA.toUpperCase())).toBe(SHA);
    expect(sha256FromHashes('MD5=0F343B0931126A20F133D67C2B018A3B')).toBeUndefined();
  });

  it('reads a Zone.Identifier; about:internet is no URL', () => {
    expect(parseZoneIdentifier('[ZoneTransfer]\r\nZoneId=3\r\nHostUrl=about:internet\r\n')).toEqual({ zone: 3 });
    expect(parseZoneIdentifier(undefined)).toEqual({});
  });

  it('reads DNS query results', () => {
    expect(parseQueryResults('::ffff:10.0.0.1;::ffff:10.0.0.2;')).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(parseQueryResults('-')).toEqual([]);
    expect(parseQueryResults('2606:4700::6810:84e5;')).toEqual(['2606:4700::6810:84e5']);
  });

  it.each([
    ['file:_C:\\x.exe', 'C:\\x.exe'],
    ['containerfile:_C:\\a.zip; file:_C:\\a.zip->b.exe; process:_pid:4,ProcessStart:1', 'C:\\a.zip->b.exe'],
    ['C:\\plain.exe', 'C:\\plain.exe'],
    ['', undefined],
  ])('reads the Defender path %j', (input, want) => {
    expect(defenderPath(input === '' ? undefined : input)).toBe(want);
  });

  it.each([
    ['Quarantine', undefined, 'quarantined'],
    ['Remove', undefined, 'blocked'],
    ['Block', undefined, 'blocked'],
    ['Allow', undefined, 'allowed'],
    ['No action', undefined, 'allowed'],
    [undefined, 2, 'quarantined'],
    ['%%887', 10, 'blocked'],
    ['Not Applicable', undefined, 'detected'],
  ])('maps the Defender action %j / %j', (name, id, want) => {
    expect(defenderAction(name, id)).toBe(want);
  });
});
