/**
 * Fault and abuse tests of batch delivery and device identity on the agent
 * endpoint (issue 11, h-agent): a copied device token (item 8), a batch id
 * reused with other content, and a seq at the edge of the safe integers.
 * Each asserts that storage holds every acked batch exactly once.
 */
import { decode } from '@msgpack/msgpack';
import { decompress } from 'zstd-napi';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_SEQ } from '../../ingest/frame-rules.js';
import { makeBatch } from '../support/agent-client.js';
import { startAgentHarness, stopAgentHarness, type AgentHarness } from '../support/agent-harness.js';
import { enroll, expectAcked, expectStoredOnce, reconnect } from './agent-support.js';

async function supersededCount(h: AgentHarness): Promise<number> {
  return (await h.metrics.ingestSupersededTotal.get()).values[0]?.value ?? 0;
}

describe('batches and device identity under attack (issue 11, h-agent)', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startAgentHarness();
  });
  afterEach(async () => {
    await stopAgentHarness(h);
  });

  it('item 8: a second live connection with the same token closes the first with superseded; the device stays connected and commands go to the live one', async () => {
    const real = await enroll(h);
    await expectAcked(real.agent, 1, 5);
    const impostor = await reconnect(h, real.tmid, real.token);
    expect(impostor.nextSeq).toBe(6);
    expect(await real.agent.next()).toMatchObject({ t: 'error', code: 'superseded' });
    expect((await real.agent.closed).code).toBe(1008);
    expect(await supersededCount(h)).toBe(1);
    await h.store.flushed();
    expect(h.store.devices.get(real.tmid)?.connected).toBe(true);
    expect(h.server.isConnected(real.tmid)).toBe(true);

    // The real device reconnects and wins in turn: a copied token cannot lock it out.
    const back = await reconnect(h, real.tmid, real.token);
    expect(await impostor.agent.next()).toMatchObject({ t: 'error', code: 'superseded' });
    await impostor.agent.closed;
    expect(h.server.connections()).toBe(1);
    const command = await h.store.commands.queue({ tmid: real.tmid, supportId: 'T001', kind: 'release', args: {}, requestedBy: 'op', requestedAt: Date.now() });
    h.server.deliverCommands(real.tmid);
    expect(await back.agent.next()).toMatchObject({ t: 'cmd', id: command.id });
    await expectAcked(back.agent, 6, 5);
    await expectStoredOnce(h, 2, 10);
    back.agent.close();
  });

  it('item 8: overlapping seq ranges under a new batch id are refused with seq_overlap, so no seq is stored twice', async () => {
    const real = await enroll(h);
    await expectAcked(real.agent, 1, 10);
    const impostor = await reconnect(h, real.tmid, real.token);
    await real.agent.closed;
    // Seqs 5..14 overlap 1..10 held under another id.
    impostor.agent.send(makeBatch(5, 10));
    expect(await impostor.agent.next()).toMatchObject({ t: 'error', code: 'seq_overlap', field: 'first' });
    await impostor.agent.closed;
    const again = await reconnect(h, real.tmid, real.token);
    expect(again.nextSeq).toBe(11);
    await expectAcked(again.agent, 11, 4);
    await expectStoredOnce(h, 2, 14);
    const trail = h.store.log.trail(real.tmid)!;
    expect(trail.ranges).toEqual([[1, 14]]);
    again.agent.close();
  });

  it('item 8: the same batch sent on two connections one after the other is stored once and acked on both', async () => {
    const real = await enroll(h);
    const batch = makeBatch(1, 3);
    real.agent.send(batch);
    expect(await real.agent.next()).toEqual({ t: 'ack', id: batch.id });
    const second = await reconnect(h, real.tmid, real.token);
    second.agent.send(batch);
    expect(await second.agent.next()).toEqual({ t: 'ack', id: batch.id, dup: true });
    await expectStoredOnce(h, 1, 3);
    second.agent.close();
  });

  it('batch id reuse: the same id with other content is refused with batch_id_reused, and the stored batch is unchanged', async () => {
    const device = await enroll(h);
    const original = makeBatch(1, 3);
    device.agent.send(original);
    expect(await device.agent.next()).toEqual({ t: 'ack', id: original.id });
    const forged = { ...original, events: original.events.map((e) => ({ ...e, image: 'C:\\evil.exe' })) };
    device.agent.send(forged);
    expect(await device.agent.next()).toMatchObject({ t: 'error', code: 'batch_id_reused', field: 'id' });
    await device.agent.closed;

    // Another seq range under the same id: refused as well.
    const again = await reconnect(h, device.tmid, device.token);
    again.agent.send({ ...makeBatch(4, 2), id: original.id });
    expect(await again.agent.next()).toMatchObject({ t: 'error', code: 'batch_id_reused' });
    await again.agent.closed;

    // The true resend is still a duplicate, acked.
    const third = await reconnect(h, device.tmid, device.token);
    third.agent.send(original);
    expect(await third.agent.next()).toEqual({ t: 'ack', id: original.id, dup: true });
    await h.settled();
    const [lsn] = h.store.log.batchIdOwner(original.id)!;
    const stored = decode(decompress(h.store.log.batch(lsn)!.z)) as { image: string }[];
    expect(stored.map((e) => e.image)).toEqual(original.events.map((e) => e.image));
    await expectStoredOnce(h, 1, 3);
    third.agent.close();
  });

  it('batch id reuse: a forged copy in the same commit group as the original is refused too', async () => {
    const device = await enroll(h);
    const original = makeBatch(1, 3);
    device.agent.send(original);
    device.agent.send({ ...original, events: original.events.map((e) => ({ ...e, k: 'file.delete' })) });
    expect(await device.agent.next()).toMatchObject({ t: 'error', code: 'batch_id_reused' });
    await h.settled();
    const [lsn] = h.store.log.batchIdOwner(original.id)!;
    expect((decode(decompress(h.store.log.batch(lsn)!.z)) as { k: string }[]).map((e) => e.k)).toEqual(['proc.start', 'proc.start', 'proc.start']);
    await expectStoredOnce(h, 1, 3);
  });

  it('seq 2^53-1: a batch ending past MAX_SEQ is refused with seq_out_of_range, and the device is not stranded', async () => {
    const device = await enroll(h);
    device.agent.send(makeBatch(Number.MAX_SAFE_INTEGER, 1));
    expect(await device.agent.next()).toMatchObject({ t: 'error', code: 'seq_out_of_range', field: 'last' });
    await device.agent.closed;
    await expectStoredOnce(h, 0, 0);

    // The last allowed seq is accepted, and what the server then tells the device is still an exact integer.
    const again = await reconnect(h, device.tmid, device.token);
    await expectAcked(again.agent, MAX_SEQ - 1, 2);
    again.agent.close();
    await again.agent.closed;
    const third = await reconnect(h, device.tmid, device.token);
    expect(third.nextSeq).toBe(MAX_SEQ + 1);
    expect(Number.isSafeInteger(third.nextSeq)).toBe(true);
    third.agent.send(makeBatch(MAX_SEQ + 1, 1));
    expect(await third.agent.next()).toMatchObject({ t: 'error', code: 'seq_out_of_range' });
    await expectStoredOnce(h, 1, 2);
  });
});
