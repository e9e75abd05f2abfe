import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSyslogRouter, loadSyslogRoutes } from './routing.js';

const TOKEN = 'relay-token-0123456789abcdef';

describe('syslog routing', () => {
  const router = createSyslogRouter([
    { supportId: 'A', cidrs: ['10.0.0.0/8', '2001:db8::/32'] },
    { supportId: 'B', cidrs: ['10.1.0.0/16', '192.0.2.7'], token: TOKEN },
  ]);
  it.each([
    ['10.2.3.4', undefined, 'A'],
    ['10.1.3.4', undefined, 'B'],
    ['::ffff:10.1.9.9', undefined, 'B'],
    ['192.0.2.7', undefined, 'B'],
    ['192.0.2.8', undefined, undefined],
    ['2001:db8:1::5', undefined, 'A'],
    ['2001:db9::5', undefined, undefined],
    ['203.0.113.1', TOKEN, 'B'],
    ['10.2.3.4', TOKEN, 'B'],
    ['10.2.3.4', 'wrong-token-0123456789', 'A'],
  ])('%s with token %s → %s', (addr, token, expected) => {
    expect(router.route(addr, token)).toBe(expected);
  });

  it('refuses a CIDR routed to two tenants and a malformed one', () => {
    expect(() => createSyslogRouter([{ supportId: 'A', cidrs: ['10.0.0.0/8'] }, { supportId: 'B', cidrs: ['10.0.0.0/8'] }])).toThrow(/invalid/);
    expect(() => createSyslogRouter([{ supportId: 'A', cidrs: ['10.0.0.0/33'] }])).toThrow(/invalid/);
  });

  it('loads and validates a routes file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiseki-routes-'));
    try {
      const good = join(dir, 'good.json');
      writeFileSync(good, JSON.stringify({ tenants: [{ supportId: 'A', cidrs: ['127.0.0.0/8'] }] }));
      expect(loadSyslogRoutes(good)).toEqual([{ supportId: 'A', cidrs: ['127.0.0.0/8'] }]);
      const bad = join(dir, 'bad.json');
      writeFileSync(bad, JSON.stringify({ tenants: [{ supportId: 'A', nets: [] }] }));
      expect(() => loadSyslogRoutes(bad)).toThrow(expect.objectContaining({ code: 'ERR_SYSLOG_ROUTES_INVALID' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
