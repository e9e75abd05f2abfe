import { describe, expect, it } from 'vitest';
import { clientEndpoint, planClients } from './load-generator.js';

const A = { host: '127.0.0.1', port: 4001 };
const B = { host: '127.0.0.1', port: 4002 };

describe('load generator: the fleet split over client processes and servers', () => {
  it('connects every process to host and port when no endpoints are given', () => {
    expect(clientEndpoint(3, { host: '127.0.0.1', port: 9000 })).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(clientEndpoint(3, { host: '127.0.0.1', port: 9000, endpoints: [] })).toEqual({ host: '127.0.0.1', port: 9000 });
  });

  it.each([
    { index: 0, n: 1, want: A },
    { index: 1, n: 1, want: A },
    { index: 0, n: 2, want: A },
    { index: 1, n: 2, want: B },
    { index: 2, n: 2, want: A },
    { index: 5, n: 2, want: B },
  ])('client process $index of a fleet with $n endpoint(s) uses URL index mod n', ({ index, n, want }) => {
    expect(clientEndpoint(index, { host: 'unused', port: 1, endpoints: [A, B].slice(0, n) })).toEqual(want);
  });

  it('gives two endpoints the same number of agents with two processes, and the ranges cover the fleet once', () => {
    const plan = planClients({ agents: 501, processes: 2, agentsPerProcess: 9000, host: 'unused', port: 1, endpoints: [A, B] });
    expect(plan).toEqual([
      { clientIndex: 0, agentFrom: 0, agentCount: 251, endpoint: A },
      { clientIndex: 1, agentFrom: 251, agentCount: 250, endpoint: B },
    ]);
  });

  it('spreads more processes than endpoints round robin', () => {
    const plan = planClients({ agents: 40, processes: 4, agentsPerProcess: 9000, host: 'unused', port: 1, endpoints: [A, B] });
    expect(plan.map((c) => c.endpoint.port)).toEqual([4001, 4002, 4001, 4002]);
    const perPort = new Map<number, number>();
    for (const c of plan) perPort.set(c.endpoint.port, (perPort.get(c.endpoint.port) ?? 0) + c.agentCount);
    expect(perPort).toEqual(new Map([[4001, 20], [4002, 20]]));
  });

  it('derives the process count from agentsPerProcess, at most one process per agent', () => {
    expect(planClients({ agents: 20_000, agentsPerProcess: 9000, host: 'h', port: 1 }).map((c) => c.agentCount)).toEqual([6667, 6667, 6666]);
    expect(planClients({ agents: 2, processes: 8, agentsPerProcess: 9000, host: 'h', port: 1 })).toHaveLength(2);
  });
});
