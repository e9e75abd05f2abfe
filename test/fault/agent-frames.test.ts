/**
 * Fault and abuse tests of the agent endpoint's frame handling (issue 11,
 * h-agent): deeply nested frames (items 1 and 5 at ingest), oversized frames
 * (1009 vs 1006), and the agent port's own connection budget. Each asserts
 * that the server stays up, that another agent keeps getting acks, and that
 * storage holds every acked batch exactly once.
 */
import { encode } from '@msgpack/msgpack';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { batchId, connectAgent, helloFacts } from '../support/agent-client.js';
import { startAgentHarness, stopAgentHarness, type AgentHarness } from '../support/agent-harness.js';
import { enroll, expectAcked, expectStoredOnce, poisonBatchFrame, withDeepTail } from './agent-support.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

async function rejectCount(h: AgentHarness, reason: string): Promise<number> {
  const m = await h.metrics.ingestRejectsTotal.get();
  return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe('agent frames under attack (issue 11, h-agent)', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
    h = await startAgentHarness({ maxFrameBytes: 64 * 1024 });
  });
  afterEach(async () => {
    process.off('unhandledRejection', onUnhandled);
    await stopAgentHarness(h);
  });

  it('item 1: a cmdr whose result is nested 5,000 deep is refused with nesting_too_deep; the server stays up and nothing is left unhandled', async () => {
    const bystander = await enroll(h, 'PC-BYSTANDER');
    const device = await enroll(h);
    const command = await h.store.commands.queue({ tmid: device.tmid, supportId: 'T001', kind: 'release', args: {}, requestedBy: 'op', requestedAt: Date.now() });
    h.server.deliverCommands(device.tmid);
    expect(await device.agent.next()).toMatchObject({ t: 'cmd', id: command.id });

    // 5 KB: the frame of the issue.
    const frame = withDeepTail({ t: 'cmdr', id: command.id, status: 'done', result: { a: 0 } }, 5_000);
    expect(frame.byteLength).toBeLessThan(6 * 1024);
    device.agent.sendRaw(frame);
    expect(await device.agent.next()).toMatchObject({ t: 'error', code: 'nesting_too_deep' });
    expect((await device.agent.closed).code).toBe(1008);

    // Any device can repeat it at will: the server still serves and acks.
    for (let i = 0; i < 3; i++) {
      const again = await connectAgent(h.url);
      again.send({ t: 'hello', tmid: device.tmid, token: device.token, ...helloFacts });
      expect((await again.next()).t).toBe('welcome');
      expect((await again.next()).t).toBe('cmd'); // still sent, never acknowledged
      again.sendRaw(frame);
      expect(await again.next()).toMatchObject({ t: 'error', code: 'nesting_too_deep' });
      await again.closed;
    }
    await expectAcked(bystander.agent, 1);
    expect(h.store.commands.get(command.id)?.state).toBe('sent');

    // A result within the bound is recorded.
    const ok = await connectAgent(h.url);
    ok.send({ t: 'hello', tmid: device.tmid, token: device.token, ...helloFacts });
    expect((await ok.next()).t).toBe('welcome');
    expect((await ok.next()).t).toBe('cmd');
    let result: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20; i++) result = { nested: result };
    ok.send({ t: 'cmdr', id: command.id, status: 'done', result });
    await h.store.flushed();
    await expectAcked(bystander.agent, 4);
    for (let i = 0; i < 50 && h.store.commands.get(command.id)?.state !== 'done'; i++) await new Promise((r) => setTimeout(r, 20));
    expect(h.store.commands.get(command.id)?.state).toBe('done');
    expect(unhandled).toEqual([]);
    await expectStoredOnce(h, 2, 6);
    ok.close();
    bystander.agent.close();
  });

  it('item 5 (ingest): a batch with an event nested 100,000 deep is refused with nesting_too_deep and never acked or stored', async () => {
    const bystander = await enroll(h, 'PC-BYSTANDER');
    const device = await enroll(h);
    await expectAcked(device.agent, 1, 2);
    const id = batchId();
    // A field 40 levels deep (the bound is 32); the next test sends 100,000 levels.
    device.agent.sendRaw(poisonBatchFrame(id, 3, 5, 2, 40));
    expect(await device.agent.next()).toMatchObject({ t: 'error', code: 'nesting_too_deep' });
    await device.agent.closed;
    // Resending the same batch is refused again: never acked.
    const again = await connectAgent(h.url);
    again.send({ t: 'hello', tmid: device.tmid, token: device.token, ...helloFacts });
    expect(await again.next()).toMatchObject({ t: 'welcome', nextSeq: 3 });
    again.sendRaw(poisonBatchFrame(id, 3, 5, 2, 40));
    expect(await again.next()).toMatchObject({ t: 'error', code: 'nesting_too_deep' });
    await again.closed;
    expect(h.store.log.batchIdOwner(id)).toBeUndefined();
    await expectAcked(bystander.agent, 1);
    await expectStoredOnce(h, 2, 5);
    bystander.agent.close();
  });

  it('item 5 (ingest): 100,000 levels inside the frame limit are refused the same way', async () => {
    await stopAgentHarness(h);
    h = await startAgentHarness({ maxFrameBytes: 1024 * 1024 });
    const device = await enroll(h);
    device.agent.sendRaw(poisonBatchFrame(batchId(), 1, 3, 1, 100_000));
    expect(await device.agent.next()).toMatchObject({ t: 'error', code: 'nesting_too_deep' });
    await expectStoredOnce(h, 0, 0);
    const other = await enroll(h, 'PC-2');
    await expectAcked(other.agent, 1);
    other.agent.close();
  });

  it.each([
    ['hello', (): Uint8Array => withDeepTail({ t: 'hello', enrollKey: 'x', ...helloFacts, extra: 0 }, 33)],
    ['inv', (): Uint8Array => withDeepTail({ t: 'inv', drives: 0 }, 33)],
  ])('bounded depth: a %s frame deeper than maxFrameDepth (32) is refused with nesting_too_deep', async (type, frame) => {
    const device = await enroll(h);
    const target = type === 'hello' ? await connectAgent(h.url) : device.agent;
    target.sendRaw(frame());
    expect(await target.next()).toMatchObject({ t: 'error', code: 'nesting_too_deep' });
    expect((await target.closed).code).toBe(1008);
    if (type === 'hello') device.agent.close();
  });

  it('bounded depth: an inventory 31 levels deep (within 32) is stored', async () => {
    const device = await enroll(h);
    device.agent.sendRaw(withDeepTail({ t: 'inv', drives: 0 }, 31));
    await expectAcked(device.agent, 1);
    for (let i = 0; i < 50 && h.store.devices.inventory(device.tmid) === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    expect(h.store.devices.inventory(device.tmid)).toBeDefined();
    device.agent.close();
  });

  it('oversized frames: over maxFrameBytes and up to 2x get frame_too_large with close 1009; beyond, uWS cuts the connection (1006), counted, and the server stays up', async () => {
    const bystander = await enroll(h, 'PC-BYSTANDER');
    for (const size of [64 * 1024 + 1, 128 * 1024]) {
      const a = await enroll(h);
      a.agent.sendRaw(new Uint8Array(size).fill(0xc0));
      expect(await a.agent.next()).toMatchObject({ t: 'error', code: 'frame_too_large' });
      expect((await a.agent.closed).code).toBe(1009);
    }
    const before = await rejectCount(h, 'frame_too_large');
    const big = await enroll(h);
    big.agent.sendRaw(new Uint8Array(128 * 1024 + 1).fill(0xc0));
    expect((await big.agent.closed).code).toBe(1006);
    for (let i = 0; i < 50 && (await rejectCount(h, 'frame_too_large')) === before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await rejectCount(h, 'frame_too_large')).toBe(before + 1);
    await expectAcked(bystander.agent, 1);
    bystander.agent.close();
  });

  it('descriptor budget: agent connections past ingest.maxConnections get 503 and are closed, and a freed slot is usable again', async () => {
    await stopAgentHarness(h);
    h = await startAgentHarness({ maxConnections: 3 });
    const one = await enroll(h, 'PC-1');
    const two = await enroll(h, 'PC-2');
    const third = await connectAgent(h.url);
    await expect(connectAgent(h.url)).rejects.toThrow(/503/);
    expect(await rejectCount(h, 'too_many_connections')).toBe(1);
    await expectAcked(one.agent, 1);
    third.close();
    await third.closed;
    let late: Awaited<ReturnType<typeof connectAgent>> | undefined;
    for (let i = 0; i < 50 && late === undefined; i++) {
      late = await connectAgent(h.url).catch(() => undefined);
      if (late === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    late!.send({ t: 'hello', enrollKey: h.enrollKey, ...helloFacts });
    expect((await late!.next()).t).toBe('welcome');
    late!.close();
    one.agent.close();
    two.agent.close();
  });

  it('malformed frames of every kind never stop the server (one frame each, then a healthy agent is acked)', async () => {
    const bystander = await enroll(h, 'PC-BYSTANDER');
    const frames: Uint8Array[] = [Uint8Array.of(0xc1), Uint8Array.of(0x81), encode({ t: 'batch', events: 'x' }), Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff)];
    for (const f of frames) {
      const a = await enroll(h);
      a.agent.sendRaw(f);
      expect((await a.agent.next()).t).toBe('error');
      await a.agent.closed;
    }
    await expectAcked(bystander.agent, 1);
    bystander.agent.close();
  });
});
