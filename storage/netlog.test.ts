import { describe, expect, it } from 'vitest';
import type { NetworkLogRecord } from '../core/contracts.js';
import type { HotStore } from './hot-store.js';
import { useTempStore } from '../test/support/temp-store.js';

const rec = (supportId: string, ts: number, over: Partial<NetworkLogRecord> = {}): NetworkLogRecord => ({
  supportId,
  receivedAt: ts,
  ts,
  format: 'squid',
  sourceAddress: '192.0.2.1',
  action: 'allowed',
  raw: `line ${ts}`,
  ...over,
});

describe('netlog repository', () => {
  let store: HotStore;
  const temp = useTempStore('kiseki-netlog-', (s) => (store = s));

  it('stores a batch with failure counts, and sequence numbers keep growing across batches and reopen', async () => {
    expect(await store.netlog.append([rec('A', 100), rec('A', 100), rec('B', 50)], [{ supportId: 'A', reason: 'bad_field', count: 2 }])).toBe(1);
    expect(await store.netlog.append([rec('A', 300)], [{ supportId: 'A', reason: 'bad_field', count: 1 }, { supportId: '', reason: 'unknown_tenant', count: 4 }])).toBe(4);
    await temp.reopen();
    expect(await store.netlog.append([rec('A', 200)], [])).toBe(5);
    expect(store.netlog.count()).toBe(5);
    expect(store.netlog.count('A')).toBe(4);
    expect(store.netlog.failures()).toEqual([
      { supportId: '', reason: 'unknown_tenant', count: 4 },
      { supportId: 'A', reason: 'bad_field', count: 3 },
    ]);
    expect(store.netlog.failures('B')).toEqual([]);
  });

  it('scans newest first with time bounds, cursor, destination and format', async () => {
    await store.netlog.append(
      [
        rec('A', 100, { dstIp: '203.0.113.5', domain: 'evil.example' }),
        rec('A', 200, { dstIp: '198.51.100.1', format: 'cef' }),
        rec('A', 300, { domain: 'evil.example' }),
        rec('A', 400),
        rec('B', 250, { domain: 'evil.example' }),
      ],
      [],
    );
    const ts = (it: Iterable<{ record: NetworkLogRecord }>) => [...it].map((s) => s.record.ts);
    expect(ts(store.netlog.scan('A'))).toEqual([400, 300, 200, 100]);
    expect(ts(store.netlog.scan('A', { from: 200, to: 300 }))).toEqual([300, 200]);
    const [first] = [...store.netlog.scan('A')];
    expect(ts(store.netlog.scan('A', { after: { at: first!.record.receivedAt, seq: first!.seq } }))).toEqual([300, 200, 100]);
    expect(ts(store.netlog.scan('A', { dst: 'evil.example' }))).toEqual([300, 100]);
    expect(ts(store.netlog.scan('A', { dst: '203.0.113.5' }))).toEqual([100]);
    expect(ts(store.netlog.scan('A', { format: 'cef' }))).toEqual([200]);
    expect([...store.netlog.range('A', 200, 400)].map((r) => r.ts)).toEqual([200, 300]);
    expect(store.netlog.oldestReceivedAt('A')).toBe(100);
    expect(await store.netlog.dropBefore('A', 250)).toBe(2);
    expect(await store.netlog.dropBefore('B', 250)).toBe(0);
    expect(store.netlog.oldestReceivedAt('A')).toBe(300);
    expect(ts(store.netlog.scan('A'))).toEqual([400, 300]);
    expect(ts(store.netlog.scan('A', { dst: 'evil.example' }))).toEqual([300]);
    expect(ts(store.netlog.scan('B'))).toEqual([250]);
  });
});
