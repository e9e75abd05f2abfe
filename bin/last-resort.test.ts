import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { EXIT_UNCAUGHT, installLastResort, type ProcessLike } from './last-resort.js';

function setup(shutdown?: () => Promise<void>) {
  const proc = new EventEmitter();
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const exits: number[] = [];
  let counted = 0;
  let exited!: () => void;
  const exitedP = new Promise<void>((r) => (exited = r));
  const lr = installLastResort({
    logger,
    process: proc as unknown as ProcessLike,
    countRejection: () => counted++,
    ...(shutdown === undefined ? {} : { shutdown }),
    exit: (code) => {
      exits.push(code);
      exited();
    },
  });
  return { proc, lines, exits, counted: () => counted, exitedP, lr };
}

describe('installLastResort', () => {
  it('logs and counts an unhandled rejection, and keeps the process running', () => {
    const t = setup();
    t.proc.emit('unhandledRejection', new Error('Commit failed (see commitError for details)'));
    t.proc.emit('unhandledRejection', 'a string reason');
    expect(t.counted()).toBe(2);
    expect(t.exits).toEqual([]);
    expect(t.lines[0]).toMatchObject({ level: 50, component: 'last-resort', msg: expect.stringContaining('keeps serving') });
    t.lr.uninstall();
    expect(t.proc.listenerCount('unhandledRejection')).toBe(0);
  });

  it('shuts down, then exits 70, on an uncaught exception', async () => {
    let closed = 0;
    const t = setup(async () => void closed++);
    t.proc.emit('uncaughtException', new Error('boom'));
    t.proc.emit('uncaughtException', new Error('again'));
    await t.exitedP;
    expect(closed).toBe(1);
    expect(t.exits).toEqual([EXIT_UNCAUGHT]);
    expect(t.lines.filter((l) => l.level === 60)).toHaveLength(2);
  });

  it('exits 70 even when the shutdown fails', async () => {
    const t = setup(() => Promise.reject(new Error('close failed')));
    t.proc.emit('uncaughtException', new Error('boom'));
    await t.exitedP;
    expect(t.exits).toEqual([EXIT_UNCAUGHT]);
  });
});
