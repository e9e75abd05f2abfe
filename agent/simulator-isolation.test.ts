import { describe, expect, it } from 'vitest';
import { allowed } from './simulator.js';

describe('isolation allow-list of the simulated agent', () => {
  const allow = [{ cidr: '10.0.0.0/8' }, { cidr: '192.0.2.10', port: 443 }];
  it.each([
    ['10.20.30.40', 80, true],
    ['11.0.0.1', 80, false],
    ['192.0.2.10', 443, true],
    ['192.0.2.10', 80, false],
    ['192.0.2.11', 443, false],
    ['2001:db8::1', 443, false],
  ] as const)('%s:%i is allowed: %s', (ip, port, expected) => {
    expect(allowed(ip, port, allow)).toBe(expected);
  });

  it('blocks everything with an empty allow-list and allows everything with 0.0.0.0/0', () => {
    expect(allowed('8.8.8.8', 53, [])).toBe(false);
    expect(allowed('8.8.8.8', 53, [{ cidr: '0.0.0.0/0' }])).toBe(true);
  });
});
