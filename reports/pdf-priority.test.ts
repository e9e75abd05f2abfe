import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { getPriority } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { lowerChildPriority } from './pdf.js';

const running: ChildProcess[] = [];
afterEach(() => {
  for (const c of running.splice(0)) c.kill('SIGKILL');
});

/** Waits (bounded) until `pid` has a child, and returns its pid. */
async function childOf(pid: number): Promise<number> {
  const { readFileSync, readdirSync } = await import('node:fs');
  for (let i = 0; i < 200; i++) {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) return Number(name);
      } catch {
        // gone
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`no child of ${pid}`);
}

describe.skipIf(!existsSync('/proc/self/task'))('lowering Chromium’s CPU priority', () => {
  it('renices the matching children and their descendants, every thread, and leaves other children alone', async () => {
    // A matching child that starts a grandchild (as Chromium's browser starts its zygote), and one that does not match.
    const shell = spawn('sh', ['-c', 'sleep 30 & wait'], { stdio: 'ignore' });
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    running.push(shell, other);
    const grandchild = await childOf(shell.pid!);
    expect(getPriority(shell.pid!)).toBe(0);

    const changed = lowerChildPriority(process.pid, 10, (comm) => comm === 'sh');
    expect(changed).toBeGreaterThanOrEqual(2);
    expect(getPriority(shell.pid!)).toBe(10);
    expect(getPriority(grandchild)).toBe(10);
    expect(getPriority(other.pid!)).toBe(0);
  });
});
