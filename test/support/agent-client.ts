/**
 * A minimal scripted agent for tests: a real `ws` client speaking MessagePack
 * frames, with helpers to wait for the next frame or the close.
 */
import { decode, encode } from '@msgpack/msgpack';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

export interface ReceivedFrame {
  t: string;
  [k: string]: unknown;
}

export interface TestAgent {
  ws: WebSocket;
  frames: ReceivedFrame[];
  send(frame: unknown): void;
  sendRaw(bytes: Uint8Array | string, binary?: boolean): void;
  /** Next frame not yet taken; rejects after `timeoutMs` (a bound, not a timing assertion). */
  next(timeoutMs?: number): Promise<ReceivedFrame>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

export async function connectAgent(url: string, options: WebSocket.ClientOptions = {}): Promise<TestAgent> {
  const ws = new WebSocket(url, { maxPayload: 64 * 1024 * 1024, ...options });
  const frames: ReceivedFrame[] = [];
  let taken = 0;
  let wake: (() => void) | undefined;
  ws.binaryType = 'nodebuffer';
  ws.on('message', (data: Buffer) => {
    frames.push(decode(data) as ReceivedFrame);
    wake?.();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => {
      resolve({ code, reason: reason.toString() });
      wake?.();
    });
  });
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    send: (frame) => ws.send(encode(frame)),
    sendRaw: (bytes, binary = true) => ws.send(bytes, { binary }),
    async next(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (taken >= frames.length) {
        if (ws.readyState === WebSocket.CLOSED) throw new Error('connection closed before the next frame');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error('no frame within the bound');
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
      return frames[taken++]!;
    },
    closed,
    close: () => ws.close(),
  };
}

export function batchId(): string {
  return randomBytes(16).toString('hex');
}

/** A batch frame with `count` simple events numbered from `first`. */
export function makeBatch(first: number, count: number, id = batchId(), kind = 'proc.start'): { t: 'batch'; id: string; sentAt: number; first: number; last: number; events: Record<string, unknown>[] } {
  const events = [];
  for (let i = 0; i < count; i++) events.push({ ts: 1_700_000_000_000 + i, k: kind, seq: first + i, pg: `{p-${i}}`, image: 'C:\\Windows\\System32\\cmd.exe' });
  return { t: 'batch', id, sentAt: 1_700_000_000_000, first, last: first + count - 1, events };
}

export const helloFacts = { computer: 'PC-TEST-01', agentVersion: '3.1.0', os: 'Windows 11 Pro 23H2', ips: ['10.0.0.5'], macs: ['00:11:22:33:44:55'] };
