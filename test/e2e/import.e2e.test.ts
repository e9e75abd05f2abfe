/**
 * End to end for the Sysmon import (issue 6): a running `kiseki start`, a
 * tenant, `kiseki import sysmon` of a Sysmon export in which a downloaded file
 * is run by explorer.exe, spawns a shell, writes a Run key and connects out to
 * a raw IP, then `kiseki detect` on that file. The engine's quick report must
 * show the origin, chain, children, registry and network sections and a black
 * verdict, as for a live agent. The import and detect functions are called
 * directly (the CLI wiring is bin/'s); the server is the built CLI.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { QuickReport } from '../../core/contracts.js';
import { runDetectCommand, runImportCommand, type ImportSummary } from '../../ingest/import/index.js';
import { openHotStore } from '../../storage/index.js';
import { eventually, runCli, startServer, useServerFixture } from '../support/cli.js';
import { textSink } from '../support/text-sink.js';

const FIXTURE = fileURLToPath(new URL('../../ingest/import/fixtures/download-chain.winlogbeat.jsonl', import.meta.url));
const PAYLOAD = 'C:\\Users\\tanaka\\Downloads\\invoice_0415.pdf.exe';
const PAYLOAD_SHA = '04e72585b9111f88c2c02bfb544c20a2860847085c8630a86fe37c8b171ef7e2';


async function call(command: typeof runImportCommand, args: string[], dataDir: string): Promise<string> {
  const stdout = textSink();
  const stderr = textSink();
  const code = await command(args, { dataDir, stdout, stderr });
  expect(code, stderr.text()).toBe(0);
  return stdout.text();
}

const section = (report: QuickReport, id: string) => report.sections.find((s) => s.id === id)!;
const field = (report: QuickReport, id: string, name: string) => section(report, id).items.map((i) => i.event[name]);

describe('kiseki import sysmon end to end', () => {
  const fx = useServerFixture('kiseki-import-e2e-', { beforeEach, afterEach });

  it('turns an imported download chain and a customer-reported detection into a black quick report', async () => {
    const created = await runCli(['tenant', 'create', '--name', 'Import Co', '--support-id', 'IMP001', '--json', '--data', fx.dir]);
    expect(created.code, created.stderr).toBe(0);
    fx.server = await startServer(['--data', fx.dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0']);
    const url = `ws://127.0.0.1:${fx.server.ingestPort}/agent/v1`;

    const summary = JSON.parse(await call(runImportCommand, ['sysmon', '--tenant', 'IMP001', '--url', url, FIXTURE], fx.dir)) as ImportSummary;
    expect(summary).toMatchObject({ ok: true, devicesEnrolled: 1, events: { sent: 15, duplicates: 1 }, badLines: { count: 2 } });
    const tmid = summary.hosts[0]!.tmid;

    // The customer brings the file and the time of the detection.
    const detected = JSON.parse(await call(runDetectCommand, ['--tenant', 'IMP001', '--tmid', tmid, '--path', PAYLOAD, '--at', '2025-10-14T05:21:10Z', '--url', url], fx.dir)) as {
      seq: number;
      alertId: string;
    };
    expect(detected.seq).toBe(16);

    const store = openHotStore({ dataDir: fx.dir });
    try {
      const view = await eventually(async () => {
        const v = store.alerts.view(detected.alertId);
        return v !== undefined && v.revisions.length > 0 ? v : undefined;
      });
      expect(view.alert).toMatchObject({ tmid, supportId: 'IMP001', computer: 'PC-IMPORT-01.corp.example', path: PAYLOAD, sha256: PAYLOAD_SHA, engine: 'import', threat: 'customer-reported', action: 'allowed', verdict: 'black', state: 'reported' });
      const report = view.revisions[0]!;
      expect(report.verdict).toBe('black');
      expect(report.executed).toBe(true);

      // 1. Origin: downloaded by chrome.exe, from the Zone.Identifier's HostUrl.
      expect(report.originKind).toBe('internet');
      expect(section(report, 'origin').summary).toBe('Downloaded by chrome.exe from https://files.example-cdn.net/d/invoice_0415.pdf.exe (referrer https://mail.example.net/).');
      // 2. Chain: run by explorer.exe (whose parent is known from its start event).
      expect(section(report, 'chain').summary).toBe('userinit.exe → explorer.exe → invoice_0415.pdf.exe');
      // 3. Children: the shell it spawned.
      expect(field(report, 'descendants', 'image')).toEqual(['C:\\Windows\\System32\\cmd.exe', 'C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe']);
      // 4, 5. What the shell wrote: the Run key and the file it points at.
      expect(field(report, 'filesWritten', 'path')).toEqual(['C:\\Users\\tanaka\\AppData\\Roaming\\upd\\updater.exe']);
      expect(field(report, 'registry', 'key')).toEqual(['HKU\\S-1-5-21-1004336348-1177238915-682003330-1103\\Software\\Microsoft\\Windows\\CurrentVersion\\Run']);
      // 7. Network: the raw public IP.
      expect(field(report, 'network', 'rip')).toEqual(['198.51.100.7']);

      const rules = report.rules.map((r) => r.ruleId);
      expect(rules).toEqual(expect.arrayContaining(['origin.internet', 'execution.executed', 'persistence.run-key', 'network.raw-ip', 'lolbin.powershell-encoded']));
    } finally {
      await store.close();
    }

    // The same file detected again an hour later is counted on the first alert (72 h dedup):
    // detect prints that alert's id, which `kiseki report` knows.
    const repeated = JSON.parse(await call(runDetectCommand, ['--tenant', 'IMP001', '--tmid', tmid, '--path', PAYLOAD, '--at', '2025-10-14T06:21:10Z', '--url', url], fx.dir)) as {
      seq: number;
      alertId: string;
    };
    expect(repeated.seq).toBe(17);
    expect(repeated.alertId).toBe(detected.alertId);
    const reported = await runCli(['report', '--alert', repeated.alertId, '--json', '--data', fx.dir]);
    expect(reported.code, reported.stderr).toBe(0);
    expect(JSON.parse(reported.stdout).alert.id).toBe(detected.alertId);

    // Imported again: nothing new is stored.
    const again = JSON.parse(await call(runImportCommand, ['sysmon', '--tenant', 'IMP001', '--url', url, FIXTURE], fx.dir)) as ImportSummary;
    expect(again).toMatchObject({ ok: true, devicesEnrolled: 0, events: { alreadyImported: 15, sent: 0 } });
  });
});
