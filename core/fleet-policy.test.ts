import { describe, expect, it } from 'vitest';
import { compileTuning, inPercentStage, rolloutBucket, tokyoDay, usbAllowedBy } from './fleet-policy.js';

describe('tuning filters', () => {
  const m = compileTuning([
    { id: 'f1', kind: 'file.read', image: '*\\SearchIndexer.exe' },
    { id: 'f2', kind: 'reg.*', keyPrefix: 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Explorer' },
    { id: 'f3', path: 'C:\\Windows\\Temp\\*.tmp' },
  ])!;
  const images: Record<string, string> = { '{p1}': 'C:\\Windows\\System32\\SearchIndexer.exe' };
  it.each([
    [{ k: 'file.read', pg: '{p1}', path: 'C:\\x' }, 'f1'],
    [{ k: 'file.read', pg: '{p2}', path: 'C:\\x' }, undefined],
    [{ k: 'file.write', pg: '{p1}', path: 'C:\\x' }, undefined],
    [{ k: 'proc.start', image: 'C:\\Windows\\System32\\searchindexer.EXE' }, undefined],
    [{ k: 'reg.set', key: 'hklm\\software\\microsoft\\windows\\currentversion\\explorer\\RecentDocs' }, 'f2'],
    [{ k: 'reg.set', key: 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run' }, undefined],
    [{ k: 'file.create', path: 'c:\\windows\\temp\\a1.TMP' }, 'f3'],
    [{ k: 'file.create', path: 'C:\\Windows\\Temp\\a1.txt' }, undefined],
    [{ path: 'C:\\Windows\\Temp\\a.tmp' }, undefined],
  ])('%j → %s', (event, want) => {
    expect(m.match(event, (pg) => images[pg])).toBe(want);
  });
  it('costs nothing without filters', () => {
    expect(compileTuning([])).toBeUndefined();
  });
});

describe('USB allow-list', () => {
  const rules = [
    { id: 'u1', vendorId: '0951', productId: '1666', serial: 'E0D5*' },
    { id: 'u2', vendorId: '046D' },
  ];
  it.each([
    [{ vendorId: '0951', productId: '1666', serial: 'E0D55EA574E1E4B1A9B3C6F1' }, 'u1'],
    [{ vendorId: '0951', productId: '1666', serial: 'AAAA' }, undefined],
    [{ vendorId: '046d', productId: 'c534' }, 'u2'],
    [{ vendorId: '0781', productId: '5581', serial: 'E0D5' }, undefined],
    [{}, undefined],
  ])('%j → %s', (device, want) => {
    expect(usbAllowedBy(rules, device)?.id).toBe(want);
  });
});

describe('rollout buckets', () => {
  it('are stable, in range, and nest percentage stages', () => {
    const tmids = Array.from({ length: 2000 }, (_, i) => `${String(i).padStart(8, '0')}-AAAA-BBBB-CCCC-DDDDEEEEFFFF`);
    for (const t of tmids) {
      expect(rolloutBucket(t)).toBe(rolloutBucket(t.toLowerCase()));
      expect(rolloutBucket(t)).toBeGreaterThanOrEqual(0);
      expect(rolloutBucket(t)).toBeLessThan(10_000);
      if (inPercentStage(t, 10)) expect(inPercentStage(t, 25)).toBe(true);
    }
    const ten = tmids.filter((t) => inPercentStage(t, 10)).length;
    // A fair hash puts about 200 of 2,000 in a 10 % stage (binomial sd ≈ 13).
    expect(ten).toBeGreaterThan(140);
    expect(ten).toBeLessThan(260);
    expect(tmids.filter((t) => inPercentStage(t, 0)).length).toBe(0);
    expect(tmids.filter((t) => inPercentStage(t, 100)).length).toBe(2000);
  });
  it('counts days in Asia/Tokyo', () => {
    expect(tokyoDay(Date.UTC(2026, 0, 5, 14, 59))).toBe('2026-01-05');
    expect(tokyoDay(Date.UTC(2026, 0, 5, 15, 0))).toBe('2026-01-06');
  });
});
