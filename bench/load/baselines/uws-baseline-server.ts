/**
 * Baseline (1), the raw transport ceiling: a bare uWebSockets.js server that
 * speaks just enough of the agent protocol for the same load generator to
 * drive it. `hello` gets a `welcome` (fake TMID and token), a `batch` is
 * acked on receipt after reading only its id (no decode, no storage, no
 * correlation), `hb` is answered, everything else is ignored. Same socket
 * options as kiseki's agent endpoint. Whatever kiseki does beyond this is
 * what its own events/s are measured against.
 *
 * Run as a child process: prints `{"event":"listening","port":P}` on stdout
 * and exits on SIGTERM / SIGINT or when its stdin closes (the runner died).
 */
import { decode, encode } from '@msgpack/msgpack';
import uWS from 'uWebSockets.js';

interface Conn {
  welcomed: boolean;
}

const ACK_HEAD = Buffer.from([0x82, 0xa1, 0x74, 0xa3, 0x61, 0x63, 0x6b, 0xa2, 0x69, 0x64, 0xd9, 0x20]);
const HB = Buffer.from(encode({ t: 'hb', ts: 0 }));
let batches = 0;
let connections = 0;
let counter = 0;

/** Reads a fixstr/str8 at `p`; returns [text, next offset] or undefined. */
function readStr(b: Uint8Array, p: number): [string, number] | undefined {
  const tag = b[p];
  if (tag === undefined) return undefined;
  let len: number;
  let start: number;
  if ((tag & 0xe0) === 0xa0) {
    len = tag & 0x1f;
    start = p + 1;
  } else if (tag === 0xd9) {
    len = b[p + 1] ?? 0;
    start = p + 2;
  } else return undefined;
  if (start + len > b.length) return undefined;
  return [Buffer.from(b.buffer, b.byteOffset + start, len).toString('latin1'), start + len];
}

/** The `t` and, for batches, the `id` of a frame whose first keys are `t` then `id` (as the load generator writes them). */
function peek(b: Uint8Array): { t: string; idStart?: number } | undefined {
  if (b.length < 3 || (b[0]! & 0xf0) !== 0x80) return undefined;
  const k = readStr(b, 1);
  if (!k || k[0] !== 't') return undefined;
  const t = readStr(b, k[1]);
  if (!t) return undefined;
  if (t[0] !== 'batch') return { t: t[0] };
  const idKey = readStr(b, t[1]);
  if (!idKey || idKey[0] !== 'id' || b[idKey[1]] !== 0xd9 || b[idKey[1] + 1] !== 32) return undefined;
  return { t: 'batch', idStart: idKey[1] + 2 };
}

const app = uWS.App().ws<Conn>('/agent/v1', {
  compression: uWS.DISABLED,
  maxPayloadLength: 8 * 1024 * 1024,
  idleTimeout: 120,
  maxBackpressure: 64 * 1024 * 1024,
  sendPingsAutomatically: true,
  upgrade: (res, req, context) => {
    res.upgrade<Conn>(
      { welcomed: false },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: () => {
    connections++;
  },
  close: () => {
    connections--;
  },
  message: (ws, message) => {
    const b = new Uint8Array(message);
    const head = peek(b);
    if (head?.t === 'batch' && head.idStart !== undefined) {
      batches++;
      const ack = Buffer.allocUnsafe(ACK_HEAD.length + 32);
      ACK_HEAD.copy(ack, 0);
      ack.set(b.subarray(head.idStart, head.idStart + 32), ACK_HEAD.length);
      ws.send(ack, true);
      return;
    }
    let frame: Record<string, unknown>;
    try {
      frame = decode(b) as Record<string, unknown>;
    } catch {
      return;
    }
    if (frame.t === 'hello') {
      const n = ++counter;
      ws.getUserData().welcomed = true;
      const tmid = `BASE${String(n).padStart(12, '0')}`;
      ws.send(
        encode({
          t: 'welcome',
          tmid,
          ...(typeof frame.tmid === 'string' ? {} : { token: `token-${n}` }),
          policy: { batchIntervalMs: 1000, maxBatchEvents: 5000, maxUnackedBatches: 16, hbIntervalMs: 30_000 },
          serverTime: Date.now(),
          nextSeq: 1,
        }),
        true,
      );
    } else if (frame.t === 'hb') ws.send(HB, true);
  },
});

app.get('/stats', (res) => {
  res.writeHeader('content-type', 'application/json').end(JSON.stringify({ batches, connections }));
});

app.listen('127.0.0.1', 0, (token) => {
  if (!token) {
    process.stderr.write('uws-baseline: listen failed\n');
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: uWS.us_socket_local_port(token), pid: process.pid })}\n`);
});

const stop = (): void => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
