/**
 * Issue 11, "also seen": the import of a gzip bomb died with a stack trace
 * (readline built one string of the whole expanded input: "Invalid string
 * length"), and its memory grew without bound. Now the expansion is bounded
 * (ERR_INPUT_TOO_LARGE, one line on stderr, exit 1), lines are split with a
 * bounded buffer, and a line nested deeper than 32 levels is a bad line
 * (`too_deep`) while the rest of the file is imported. The server is
 * untouched throughout.
 */
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, startServer, useServerFixture } from '../support/cli.js';

const FIXTURE = fileURLToPath(new URL('../../ingest/import/fixtures/download-chain.nxlog.jsonl', import.meta.url));

/** A gzip of `bytes` zero bytes (no newline anywhere), written as a stream: the test never holds it. */
async function gzipBomb(path: string, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(1024 * 1024);
  let left = bytes;
  const source = new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      left -= chunk.length;
      this.push(chunk);
    },
  });
  await pipeline(source, createGzip({ level: 1 }), createWriteStream(path));
}

describe('fault: import bombs (also seen)', () => {
  const fx = useServerFixture('kiseki-fault-import-', { beforeEach, afterEach });

  it('a gzip bomb is refused with ERR_INPUT_TOO_LARGE in one line, no stack trace; a 100,000-deep line is a too_deep bad line; the server stays up', async () => {
    const tenant = await runCli(['tenant', 'create', '--name', 'Bomb Corp', '--support-id', 'BM0001', '--data', fx.dir]);
    expect(tenant.code, tenant.stderr).toBe(0);
    fx.server = await startServer(['--data', fx.dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0', '--shards', '1']);
    const url = `ws://127.0.0.1:${fx.server.ingestPort}/agent/v1`;

    const bomb = join(fx.dir, 'bomb.jsonl.gz');
    // Just past the 256 MiB floor of the expansion limit (ingest/import/sysmon-reader.ts maxExpandedBytes).
    await gzipBomb(bomb, 270 * 1024 * 1024);
    const r = await runCli(['import', 'sysmon', '--tenant', 'BM0001', '--url', url, '--data', fx.dir, bomb]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/kiseki import: .*bomb\.jsonl\.gz: expands beyond \d+ bytes/);
    expect(r.stderr).not.toMatch(/\n\s+at /);

    const deep = join(fx.dir, 'deep.jsonl');
    writeFileSync(deep, `${readFileSync(FIXTURE, 'utf8')}\n${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}\n`);
    const ok = await runCli(['import', 'sysmon', '--tenant', 'BM0001', '--url', url, '--data', fx.dir, deep]);
    expect(ok.code, ok.stderr).toBe(0);
    const summary = JSON.parse(ok.stdout) as { ok: boolean; badLines: { byReason: Record<string, number> }; events: { sent: number } };
    expect(summary.ok).toBe(true);
    expect(summary.badLines.byReason.too_deep).toBe(1);
    expect(summary.events.sent).toBeGreaterThan(0);

    expect(fx.server.child.exitCode).toBeNull();
    expect([200, 503]).toContain((await fetch(`http://127.0.0.1:${fx.server.httpPort}/healthz`)).status);
  });
});
