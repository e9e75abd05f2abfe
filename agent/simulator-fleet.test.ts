import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import type { TrailEvent } from '../core/contracts.js';
import { checkUpgradeArgs, createSimFleet } from './simulator-fleet.js';
import { usbInsertEvent } from './trail-generator.js';

const policy = (version: number, mode: 'block' | 'non-block') => ({
  version,
  mode,
  tuning: [{ id: 'tf', kind: 'file.read', image: '*\\SearchIndexer.exe' }],
  usb: { control: true, allow: [{ id: 'u', vendorId: '046d' }] },
});

describe('simulated agent: fleet policy at the source', () => {
  it('applies only newer policies, drops tuned events with their size, and blocks USB devices in block mode', () => {
    const fleet = createSimFleet();
    expect(fleet.applyPolicy({ version: 'x' })).toBe(false);
    expect(fleet.applyPolicy(policy(2, 'block'))).toBe(true);
    expect(fleet.applyPolicy(policy(1, 'non-block'))).toBe(false);
    expect(fleet.version).toBe(2);

    const read: TrailEvent = { ts: 1, seq: 0, k: 'file.read', pg: '{i}', path: 'C:\\a', vol: 'fixed', count: 1 };
    const events: TrailEvent[] = [
      { ts: 1, seq: 0, k: 'proc.start', pg: '{i}', image: 'C:\\Windows\\System32\\SearchIndexer.exe' },
      read,
      { ts: 1, seq: 0, k: 'file.read', pg: '{x}', path: 'C:\\a', vol: 'fixed', count: 1 },
      { ...usbInsertEvent({ vendorId: '0781', productId: '5581', serial: 'S1' }), ts: 1 },
      { ...usbInsertEvent({ vendorId: '046d', productId: 'c534', serial: 'S2', type: 'hid' }), ts: 1 },
    ];
    const size = encode(read).byteLength;
    const kept = fleet.filter(events);
    expect(kept.map((e) => e.k)).toEqual(['proc.start', 'file.read', 'usb.connect', 'usb.connect']);
    expect(kept[2]).toMatchObject({ blocked: true, reason: 'device-control', drive: 'E:' });
    expect(kept[3]!.blocked).toBeUndefined();
    expect(fleet.takeTuned()).toEqual({ events: 1, bytes: size });
    expect(fleet.takeTuned()).toBeUndefined();
    expect(fleet.takeUsbChanged()).toBe(true);
    expect(fleet.takeUsbChanged()).toBe(false);
    expect(fleet.attachedUsb()).toEqual([expect.objectContaining({ serial: 'S1', blocked: true }), expect.objectContaining({ serial: 'S2' })]);
    expect(fleet.stats).toEqual({ tunedEvents: 1, tunedBytes: size, usbBlocked: 1 });

    // Non-block mode: reported, never blocked.
    fleet.applyPolicy(policy(3, 'non-block'));
    expect(fleet.filter([{ ...usbInsertEvent({ vendorId: '0781', productId: '5581', serial: 'S3' }), ts: 2 }])[0]!.blocked).toBeUndefined();
  });

  it.each([
    [{ version: '3.3.0', url: 'https://u/p.msi', sha256: 'a'.repeat(64) }, { version: '3.3.0' }],
    [{ version: '3.3.0', url: 'http://u/p.msi', sha256: 'a'.repeat(64) }, { error: 'the package URL must be https' }],
    [{ version: '3.3.0', url: 'https://u/p.msi', sha256: 'zz' }, { error: 'invalid package sha256' }],
    [{ version: '', url: 'https://u/p.msi', sha256: 'a'.repeat(64) }, { error: 'invalid version' }],
  ])('checks upgrade args %j', (args, want) => {
    expect(checkUpgradeArgs(args)).toEqual(want);
  });
});
