import { describe, expect, it } from 'vitest';
import { LastSeenRefresher } from './last-seen.js';

function rig(refreshMs = 60_000, tickMs = 250) {
  const writes: [string, number][] = [];
  const r = new LastSeenRefresher({ write: (tmid, at) => writes.push([tmid, at]), refreshMs, tickMs });
  return { r, writes };
}

describe('LastSeenRefresher', () => {
  it('writes each connected device once per refresh period, a slice per tick, with its latest time', () => {
    const { r, writes } = rig();
    for (let i = 0; i < 19_000; i++) r.touch(`D${i}`, 1_000);
    const perTick: number[] = [];
    // One refresh period: 240 ticks of 250 ms.
    for (let t = 0; t < 240; t++) {
      if (t === 100) r.touch('D18999', 2_000);
      perTick.push(r.tick());
    }
    // Spread: never the whole fleet in one turn of the event loop.
    expect(Math.max(...perTick)).toBe(Math.ceil(19_000 / 240));
    const once = new Map<string, number>();
    for (const [tmid, at] of writes.slice(0, 19_000)) {
      expect(once.has(tmid)).toBe(false);
      once.set(tmid, at);
    }
    expect(once.size).toBe(19_000);
    expect(once.get('D18999')).toBe(2_000);
    expect(once.get('D0')).toBe(1_000);
  });

  it('reaches devices that connect during a round, skips those that left, and stops on an empty fleet', () => {
    const { r, writes } = rig(1_000, 250);
    r.touch('A', 1);
    r.touch('B', 1);
    r.touch('C', 1);
    r.touch('D', 1);
    expect(r.tick()).toBe(1);
    r.forget('B');
    r.touch('E', 2);
    for (let i = 0; i < 4; i++) r.tick();
    const names = writes.map(([t]) => t);
    expect(names).not.toContain('B');
    expect(names.slice(0, 4)).toEqual(['A', 'C', 'D', 'E']);
    for (const t of ['A', 'C', 'D', 'E']) r.forget(t);
    expect(r.size).toBe(0);
    expect(r.tick()).toBe(0);
  });

  it('writes every device at most once a tick when the period is shorter than a tick', () => {
    const { r, writes } = rig(100, 250);
    r.touch('A', 1);
    r.touch('B', 1);
    expect(r.tick()).toBe(2);
    expect(writes.map(([t]) => t).sort()).toEqual(['A', 'B']);
  });
});
