/**
 * Issue 11, item 3: two servers on one data directory handed out the same
 * log sequence numbers and overwrote each other's batches. Now the second
 * `kiseki start` refuses (exit 73, ERR_DATA_DIR_LOCKED) while the first keeps
 * serving, and a lock left by a server killed with SIGKILL does not block
 * the next start.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectAgent, helloFacts, makeBatch } from '../support/agent-client.js';
import { runCli, startServer, useServerFixture } from '../support/cli.js';

describe('fault: two servers on one data directory (item 3)', () => {
  const fx = useServerFixture('kiseki-fault-lock-', { beforeEach, afterEach });

  it('item 3: a second kiseki start on the same --data exits 73 with a clear message; the first keeps acking; after kill -9 a new start succeeds', async () => {
    const tenant = await runCli(['tenant', 'create', '--name', 'Lock Corp', '--support-id', 'LK0001', '--json', '--data', fx.dir]);
    expect(tenant.code, tenant.stderr).toBe(0);
    const enrollKey = (JSON.parse(tenant.stdout) as { enrollKey: string }).enrollKey;
    fx.server = await startServer(['--data', fx.dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0', '--shards', '1']);

    const second = await runCli(['start', '--data', fx.dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0', '--shards', '1']);
    expect(second.code).toBe(73);
    expect(second.stderr).toContain(`another kiseki server (pid ${fx.server.child.pid}) is running on ${fx.dir}`);
    expect(second.stdout).not.toContain('listening');

    // The first server is untouched and still acks.
    const agent = await connectAgent(`ws://127.0.0.1:${fx.server.ingestPort}/agent/v1`);
    agent.send({ t: 'hello', enrollKey, ...helloFacts });
    expect((await agent.next()).t).toBe('welcome');
    agent.send(makeBatch(1, 3));
    expect((await agent.next()).t).toBe('ack');
    agent.close();

    // kill -9 leaves the lock file behind; the next start sees its pid is gone and takes it over.
    fx.server.child.kill('SIGKILL');
    await fx.server.exited;
    fx.server = await startServer(['--data', fx.dir, '--host', '127.0.0.1', '--ingest-port', '0', '--http-port', '0', '--shards', '1']);
    // The census is read beside the running server (LMDB readers never block its writer).
    const census = JSON.parse((await runCli(['inspect', '--json', '--data', fx.dir])).stdout) as { batches: number; batchIds: number };
    expect(census).toMatchObject({ batches: 1, batchIds: 1 });
  });
});
