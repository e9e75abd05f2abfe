/**
 * The agent endpoint: a uWebSockets.js server at /agent/v1 speaking the
 * protocol of docs/PROTOCOL.md. Each frame is scanned synchronously inside
 * the message callback (its buffer dies when the callback returns); a batch's
 * events are copied once into a buffer of their own, which is committed and
 * then transferred to the owning shard without another copy.
 *
 * Any bad input gets an `error` frame with a stable code and the connection
 * is closed; nothing a single agent sends can stop the server. Frames nest at
 * most `maxFrameDepth` levels (checked by the scanner before any recursive
 * decoder sees them), every promise started here has a handler, and a device
 * has at most one live connection: a newer authenticated connection closes
 * the older one with `superseded` (docs/PROTOCOL.md says why the newer wins).
 */
import { decode, encode } from '@msgpack/msgpack';
import uWS from 'uWebSockets.js';
import type { AgentPolicy, ProtocolErrorCode, ServerFrame } from '../core/contracts.js';
import { tokyoDay } from '../core/fleet-policy.js';
import type { Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import { KisekiError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Metrics } from '../core/metrics.js';
import type { CommandRecord, DeviceFacts, DeviceRecord, HotStore, TenantRecord } from '../storage/index.js';
import type { BatchCommitter, CommitOutcome } from './batch-committer.js';
import { checkBatchEnvelope, commandResultSchema, helloSchema, rejectionFromZod, type HelloInput, type Rejection } from './frame-rules.js';
import { scanFrame, type FrameEnvelope } from './frame-scanner.js';
import { LastSeenRefresher } from './last-seen.js';

type SessionState = 'awaiting_hello' | 'authenticating' | 'ready' | 'closed';

/** Per-connection state; kept small, since tens of thousands of agents sit mostly idle. */
interface Session {
  state: SessionState;
  openedAt: number;
  /** Only what frames need: the full record stays in LMDB, not in every idle session. */
  device: SessionDevice | undefined;
}

interface SessionDevice {
  tmid: string;
  supportId: string;
}

/**
 * What an agent server asks beyond its local store when several ingest nodes
 * serve one fleet (cluster/directory.ts, docs/CLUSTER.md). The embedded mode
 * passes none: every answer then comes from the local store, synchronously,
 * as before. Every method rejects when the shared directory cannot answer
 * (bounded in time by the implementation); the agent then gets the retryable
 * `storage_unavailable` and says hello again later.
 */
export interface AgentDirectory {
  /**
   * Copies the device's shared record into the local store when the local one
   * is missing or holds another token hash; resolves true when it copied one.
   */
  refreshDevice(tmid: string): Promise<boolean>;
  /** The tenant this enrollment key belongs to, copied into the local store; undefined when no tenant has it. */
  tenantForEnrollKey(enrollKey: string): Promise<TenantRecord | undefined>;
  /** Publishes a newly enrolled device, so every ingest node knows it; its welcome (with the token) waits for this. */
  publishDevice(device: DeviceRecord): Promise<void>;
  /** One past the highest seq any ingest node has stored for the device (1 for none). */
  nextSeq(tmid: string): Promise<number>;
}

/** A device's connection to this server began (its welcome) or ended. */
export interface DeviceConnectionChange {
  tmid: string;
  supportId: string;
  connected: boolean;
  /** When, ms. */
  at: number;
  /** At a connect: what the device's record holds after its hello. */
  facts?: DeviceFacts;
}

export interface AgentServerOptions {
  config: Config['ingest'];
  store: HotStore;
  committer: BatchCommitter;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** The fleet directory shared by several ingest nodes; absent in the embedded mode. */
  directory?: AgentDirectory;
  /**
   * Told every state a command reached here (sent, expired, failed as undeliverable, and what the agent reported),
   * after it is stored: a cluster ingest node shares it with the other nodes (cluster/commands-sync.ts).
   */
  onCommandChanged?: (command: CommandRecord) => void;
  /**
   * Told once per welcome and once per end of the device's live connection (not per frame): a cluster
   * ingest node publishes the device's connection state to the other nodes (cluster/device-state.ts).
   */
  onDeviceConnection?: (change: DeviceConnectionChange) => void;
}

export interface AgentServer {
  /** The port actually listened on (useful with port 0). */
  readonly port: number;
  /** Sends a device its pending commands now if it is connected; otherwise they wait for its next hello. */
  deliverCommands(tmid: string): void;
  /** True when the device has a live, authenticated connection. */
  isConnected(tmid: string): boolean;
  /** Sends a tenant's fleet policy to its connected agents (a `policy` frame); the others get it in their next `welcome`. */
  pushFleetPolicy(supportId: string): number;
  /** Open agent connections. */
  connections(): number;
  /**
   * Stops accepting connections and frames, waits until every admitted batch
   * is committed and acked, then closes every connection with
   * `server_shutting_down`.
   */
  close(): Promise<void>;
}

/** Frames at most this large are decoded whole (hello, inv); batches are only scanned. */
const SMALL_FRAME_BYTES = 64 * 1024;
const HELLO_SWEEP_MS = 500;
/** A connected device's stored lastSeen is rewritten about this often (last-seen.ts says why not every 5 s). */
const LAST_SEEN_REFRESH_MS = 60_000;
const LAST_SEEN_TICK_MS = 250;
/** Heartbeats at most this large are decoded for their `tuned` counts; a plain one is ~15 bytes. */
const MAX_HB_DECODE_BYTES = 1024;
/** Largest per-report tuned count believed: a report past it is ignored, not added. */
const MAX_TUNED_PER_REPORT = 1e12;

const CLOSE_CODES: Partial<Record<ProtocolErrorCode, number>> = {
  frame_too_large: 1009,
  server_shutting_down: 1001,
  internal_error: 1011,
  // 1013 Try Again Later: storage refuses writes until space is freed.
  storage_unavailable: 1013,
};

/** Answer to an upgrade past `maxConnections`: the socket is closed at once, so its descriptor is freed. */
const TOO_MANY_CONNECTIONS = 'too many agent connections; retry later';

const ACK_HEAD = Uint8Array.from([0xa1, 0x74, 0xa3, 0x61, 0x63, 0x6b, 0xa2, 0x69, 0x64]); // "t":"ack","id":
const DUP_TAIL = Uint8Array.from([0xa3, 0x64, 0x75, 0x70, 0xc3]); // "dup":true

/**
 * Encodes `{t:'ack', id, dup?: true}` as standard MessagePack without a general
 * encoder: one ack per batch is the most frequent frame the server sends
 * (profiled: @msgpack/msgpack's encode() was ~15 µs per ack).
 */
export function encodeAck(id: string, dup: boolean): Uint8Array {
  const idBytes = Buffer.byteLength(id);
  const strHeader = idBytes < 32 ? 1 : 2;
  const out = new Uint8Array(1 + ACK_HEAD.length + strHeader + idBytes + (dup ? DUP_TAIL.length : 0));
  let p = 0;
  out[p++] = dup ? 0x83 : 0x82;
  out.set(ACK_HEAD, p);
  p += ACK_HEAD.length;
  if (idBytes < 32) out[p++] = 0xa0 | idBytes;
  else {
    out[p++] = 0xd9;
    out[p++] = idBytes;
  }
  p += Buffer.from(out.buffer, out.byteOffset + p, idBytes).write(id, 'utf8');
  if (dup) out.set(DUP_TAIL, p);
  return out;
}

/**
 * Starts the agent server and resolves once it listens.
 * @throws KisekiError ERR_LISTEN_FAILED when the port cannot be bound.
 */
export async function startAgentServer(options: AgentServerOptions): Promise<AgentServer> {
  const { config, store, committer, clock, metrics, directory } = options;
  const onCommandChanged = options.onCommandChanged;
  const log = options.logger.child({ component: 'agent-server' });
  const policy: AgentPolicy = {
    batchIntervalMs: config.batchIntervalMs,
    maxBatchEvents: config.maxBatchEvents,
    maxUnackedBatches: config.maxUnackedBatches,
    hbIntervalMs: config.hbIntervalMs,
  };
  const sockets = new Set<uWS.WebSocket<Session>>();
  /** Authenticated connections by TMID, for command delivery. */
  const live = new Map<string, uWS.WebSocket<Session>>();
  const awaitingHello = new Set<uWS.WebSocket<Session>>();
  /** Devices with a live connection: their stored lastSeen is refreshed a slice at a time (last-seen.ts). */
  const lastSeen = new LastSeenRefresher({
    // patch reads the latest record (a hello may be queued) and writes only when lastSeen moves on.
    write: (tmid, at) => {
      store.devices.patch(tmid, (latest) => (latest.lastSeen < at ? { ...latest, lastSeen: at } : undefined)).catch(logFailure('lastSeen could not be updated.'));
    },
    refreshMs: LAST_SEEN_REFRESH_MS,
    tickMs: LAST_SEEN_TICK_MS,
  });
  let accepting = true;
  /** Tuning savings reported by agents (`hb.tuned`) since the last flush, per tenant and day. */
  let tunedPending = new Map<string, { supportId: string; day: string; events: number; bytes: number }>();
  let rejectsByReason: Record<string, number> = {};
  /** A promise the agent path starts and does not wait for still gets a handler: failures are logged, never unhandled. */
  const logFailure =
    (what: string) =>
    (err: unknown): void => {
      log.error({ err }, what);
    };
  /** Whether the last directory lookup failed: its failures are logged once per outage, then counted with the rejects. */
  let directoryDown = false;

  const app =
    config.tlsCertFile !== undefined && config.tlsKeyFile !== undefined
      ? uWS.SSLApp({ cert_file_name: config.tlsCertFile, key_file_name: config.tlsKeyFile })
      : uWS.App();

  function send(ws: uWS.WebSocket<Session>, frame: ServerFrame): void {
    if (ws.getUserData().state === 'closed') return;
    ws.send(frame.t === 'ack' ? encodeAck(frame.id, frame.dup === true) : encode(frame), true);
  }

  /**
   * The handler of a store write nobody waits for (lastSeen, inventory, a
   * command result): a failure (disk full, a record LMDB cannot encode) is
   * logged, never left as an unhandled rejection that would end the process.
   */
  function reject(ws: uWS.WebSocket<Session>, code: ProtocolErrorCode, message: string, field?: string): void {
    const session = ws.getUserData();
    if (session.state === 'closed') return;
    metrics.ingestRejectsTotal.inc({ reason: code });
    rejectsByReason[code] = (rejectsByReason[code] ?? 0) + 1;
    const frame: ServerFrame = field === undefined ? { t: 'error', code, message } : { t: 'error', code, message, field };
    ws.cork(() => {
      ws.send(encode(frame), true);
      ws.end(CLOSE_CODES[code] ?? 1008, code);
    });
  }

  function rejectWith(ws: uWS.WebSocket<Session>, r: Rejection): void {
    reject(ws, r.code, r.message, r.field);
  }

  /** `sharedNextSeq`: the directory's answer (several ingest nodes), taken when above the local trail's. */
  function welcome(ws: uWS.WebSocket<Session>, device: DeviceRecord, token?: string, sharedNextSeq = 1): void {
    const session = ws.getUserData();
    if (session.state === 'closed') return;
    session.state = 'ready';
    session.device = { tmid: device.tmid, supportId: device.supportId };
    const trail = store.log.trail(device.tmid);
    const last = trail?.ranges[trail.ranges.length - 1];
    // LMDB's trail, or what the committer acked and LMDB does not have yet.
    const localNextSeq = Math.max(last === undefined ? 1 : last[1] + 1, committer.ackedNextSeq(device.tmid));
    send(ws, {
      t: 'welcome',
      tmid: device.tmid,
      ...(token === undefined ? {} : { token }),
      // The tenant's fleet policy rides along: an agent that was offline during a change gets it here.
      policy: { ...policy, fleet: store.fleet.agentPolicy(device.supportId) },
      serverTime: clock.now(),
      nextSeq: Math.max(localNextSeq, sharedNextSeq),
    });
    // One live connection per device: the newer one wins, so a copied token can never lock the real
    // device out (it reconnects and wins in turn), and the older one is closed before it sends more.
    const older = live.get(device.tmid);
    live.set(device.tmid, ws);
    if (older !== undefined && older !== ws) {
      metrics.ingestSupersededTotal.inc();
      log.warn({ tmid: device.tmid, supportId: device.supportId }, 'A device connected again while connected: the older connection was closed (a copied token shows as this repeating).');
      reject(older, 'superseded', 'A newer connection of this device replaced this one.');
    }
    options.onDeviceConnection?.({
      tmid: device.tmid,
      supportId: device.supportId,
      connected: true,
      at: clock.now(),
      facts: { computer: device.computer, agentVersion: device.agentVersion, os: device.os, ips: device.ips, macs: device.macs },
    });
    deliverCommands(device.tmid);
  }

  /** Sends queued (and sent but unacknowledged) commands; the commands module expires the stale ones. */
  function deliverCommands(tmid: string): void {
    const ws = live.get(tmid);
    if (ws === undefined || ws.getUserData().state !== 'ready') return;
    // Encoded before sending: a command that cannot be encoded throws here and is failed by deliver,
    // instead of cutting the connection (and the device, at every reconnect) with internal_error.
    const before = onCommandChanged === undefined ? [] : store.commands.pendingFor(tmid);
    store.commands
      .deliver(tmid, clock.now(), (c) => {
        const bytes = encode({ t: 'cmd', id: c.id, kind: c.kind, args: c.args });
        if (ws.getUserData().state !== 'closed') ws.send(bytes, true);
      })
      .then(() => {
        for (const c of before) {
          const now = store.commands.get(c.id);
          if (now !== undefined && now.state !== c.state) onCommandChanged!(now);
        }
      })
      .catch(logFailure('Command states could not be stored after a delivery.'));
  }

  function applyCommandResult(device: SessionDevice, command: CommandRecord, status: 'acknowledged' | 'done' | 'failed', result: Record<string, unknown> | undefined, error: string | undefined): void {
    const now = clock.now();
    const outcome = { status, at: now, ...(result === undefined ? {} : { result }), ...(error === undefined ? {} : { error }) };
    store.commands
      .recordOutcome(command.id, outcome)
      .then((next) => {
        if (next !== undefined) onCommandChanged?.(next);
        return store.identity.appendAudit({
          at: now,
          actor: `agent:${device.tmid}`,
          role: 'system',
          supportId: device.supportId,
          action: `command.${status}`,
          target: command.id,
          from: 'agent',
          details: { kind: command.kind, ...(error === undefined ? {} : { error }) },
        });
      })
      .catch(logFailure('A command result could not be stored.'));
  }

  function onCommandResult(ws: uWS.WebSocket<Session>, bytes: Uint8Array): void {
    let raw: unknown;
    try {
      raw = decode(bytes);
    } catch {
      return reject(ws, 'malformed_frame', 'The frame is not valid MessagePack.');
    }
    const parsed = commandResultSchema.safeParse(raw);
    if (!parsed.success) return rejectWith(ws, rejectionFromZod(parsed.error, raw));
    const device = ws.getUserData().device!;
    const command = store.commands.get(parsed.data.id);
    if (command === undefined || command.tmid !== device.tmid) {
      return reject(ws, 'invalid_field', 'No command with this id was sent to this device.', 'id');
    }
    applyCommandResult(device, command, parsed.data.status, parsed.data.result, parsed.data.error);
  }

  function markConnected(device: DeviceRecord, hello: HelloInput, now: number): DeviceRecord {
    const facts = { computer: hello.computer, agentVersion: hello.agentVersion, os: hello.os, ips: hello.ips, macs: hello.macs, lastSeen: now, connected: true };
    store.devices.patch(device.tmid, (current) => ({ ...current, ...facts })).catch(logFailure('The device record could not be updated at hello.'));
    return { ...device, ...facts };
  }

  function onHello(ws: uWS.WebSocket<Session>, bytes: Uint8Array): void {
    const session = ws.getUserData();
    if (session.state !== 'awaiting_hello') return reject(ws, 'duplicate_hello', 'hello was already received on this connection.');
    let raw: unknown;
    try {
      raw = decode(bytes);
    } catch {
      return reject(ws, 'malformed_frame', 'The frame is not valid MessagePack.');
    }
    // Encoders that write undefined as nil: treat nil fields as absent.
    if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
      raw = Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== null));
    }
    const parsed = helloSchema.safeParse(raw);
    if (!parsed.success) return rejectWith(ws, rejectionFromZod(parsed.error, raw));
    const hello = parsed.data;
    awaitingHello.delete(ws);
    const now = clock.now();
    if (hello.tmid !== undefined || hello.token !== undefined) {
      if (hello.tmid === undefined) return reject(ws, 'missing_field', 'Field tmid is required with a token.', 'tmid');
      if (hello.token === undefined) return reject(ws, 'missing_field', 'Field token is required with a tmid.', 'token');
      const device = store.devices.authenticate(hello.tmid, hello.token);
      if (directory !== undefined) {
        session.state = 'authenticating';
        return void authenticateShared(ws, directory, hello, hello.tmid, hello.token, device).catch(logFailure('A hello could not be answered.'));
      }
      if (device === undefined) return reject(ws, 'auth_failed', 'Unknown TMID or wrong token.');
      lastSeen.touch(device.tmid, now);
      return welcome(ws, markConnected(device, hello, now));
    }
    if (hello.enrollKey === undefined) {
      return reject(ws, 'missing_field', 'Field enrollKey is required for a device without tmid and token.', 'enrollKey');
    }
    const tenant = store.tenants.forEnrollKey(hello.enrollKey);
    const facts = { computer: hello.computer, agentVersion: hello.agentVersion, os: hello.os, ips: hello.ips, macs: hello.macs };
    if (directory !== undefined) {
      session.state = 'authenticating';
      return void enrollShared(ws, directory, hello.enrollKey, tenant, facts).catch(logFailure('An enrollment could not be answered.'));
    }
    if (tenant === undefined) return reject(ws, 'enroll_key_invalid', 'The enrollment key matches no tenant.');
    session.state = 'authenticating';
    store.devices.enroll(tenant, facts, now).then(
      ({ device, token }) => {
        metrics.ingestEnrollmentsTotal.inc();
        log.info({ tmid: device.tmid, supportId: tenant.supportId, computer: device.computer }, 'Device enrolled.');
        lastSeen.touch(device.tmid, clock.now());
        welcome(ws, device, token);
      },
      (err: unknown) => {
        log.error({ err }, 'Enrollment could not be stored.');
        reject(ws, 'internal_error', 'The enrollment could not be stored; retry later.');
      },
    );
  }

  /** Answers a hello whose directory lookup failed (NATS unreachable, too slow): retryable, logged once per outage. */
  function directoryFailed(ws: uWS.WebSocket<Session>, err: unknown): void {
    if (!directoryDown) {
      directoryDown = true;
      log.error({ err }, 'The shared device directory did not answer; hellos are refused as storage_unavailable until it does (agents retry).');
    }
    reject(ws, 'storage_unavailable', 'The device directory cannot be reached; say hello again later.');
  }

  function directoryAnswered(): void {
    if (directoryDown) {
      directoryDown = false;
      log.warn('The shared device directory answers again.');
    }
  }

  /**
   * A TMID + token hello with a shared directory: a device unknown here, or
   * whose token does not match the local record, is looked up in the
   * directory (it may have enrolled on another ingest node); `nextSeq` comes
   * from the batches every ingest node has stored for the device.
   */
  async function authenticateShared(ws: uWS.WebSocket<Session>, dir: AgentDirectory, hello: HelloInput, tmid: string, token: string, authenticated: DeviceRecord | undefined): Promise<void> {
    let device = authenticated;
    let nextSeq: number;
    try {
      if (device === undefined && (await dir.refreshDevice(tmid))) device = store.devices.authenticate(tmid, token);
      if (device === undefined) {
        directoryAnswered();
        return reject(ws, 'auth_failed', 'Unknown TMID or wrong token.');
      }
      nextSeq = await dir.nextSeq(tmid);
      directoryAnswered();
    } catch (err) {
      return directoryFailed(ws, err);
    }
    if (ws.getUserData().state === 'closed') return;
    const now = clock.now();
    lastSeen.touch(device.tmid, now);
    welcome(ws, markConnected(device, hello, now), undefined, nextSeq);
  }

  /** Enrollment with a shared directory: the tenant may come from another ingest node; the device is published before its welcome. */
  async function enrollShared(ws: uWS.WebSocket<Session>, dir: AgentDirectory, enrollKey: string, local: TenantRecord | undefined, facts: DeviceFacts): Promise<void> {
    let tenant = local;
    try {
      tenant ??= await dir.tenantForEnrollKey(enrollKey);
      directoryAnswered();
    } catch (err) {
      return directoryFailed(ws, err);
    }
    if (tenant === undefined) return reject(ws, 'enroll_key_invalid', 'The enrollment key matches no tenant.');
    if (ws.getUserData().state === 'closed') return;
    let enrolled: { device: DeviceRecord; token: string };
    try {
      enrolled = await store.devices.enroll(tenant, facts, clock.now());
    } catch (err) {
      log.error({ err }, 'Enrollment could not be stored.');
      return reject(ws, 'internal_error', 'The enrollment could not be stored; retry later.');
    }
    const { device, token } = enrolled;
    try {
      // Before the welcome: a device that enrolls here and moves to another ingest node at once must be known there.
      // If this fails, the agent never got its token and enrolls again; the record left here is never used.
      await dir.publishDevice(device);
      directoryAnswered();
    } catch (err) {
      return directoryFailed(ws, err);
    }
    metrics.ingestEnrollmentsTotal.inc();
    log.info({ tmid: device.tmid, supportId: device.supportId, computer: device.computer }, 'Device enrolled.');
    lastSeen.touch(device.tmid, clock.now());
    welcome(ws, device, token);
  }

  function onBatch(ws: uWS.WebSocket<Session>, bytes: Uint8Array, env: FrameEnvelope): void {
    const device = ws.getUserData().device!;
    const check = checkBatchEnvelope(env);
    if (!check.ok) return rejectWith(ws, check);
    // The one copy of a batch: into a buffer that owns its memory, so it can be transferred to a shard.
    const events = new Uint8Array(new ArrayBuffer(env.eventsEnd - env.eventsStart));
    events.set(bytes.subarray(env.eventsStart, env.eventsEnd));
    const id = env.id as string;
    metrics.ingestBytesTotal.inc(bytes.byteLength);
    committer.submit(
      {
        tmid: device.tmid,
        id,
        sentAt: env.sentAt as number,
        first: env.first as number,
        last: env.last as number,
        events,
        eventCount: env.eventCount,
      },
      (outcome: CommitOutcome) => {
        if (ws.getUserData().state === 'closed') return;
        switch (outcome) {
          case 'stored':
            return send(ws, { t: 'ack', id });
          case 'duplicate':
            return send(ws, { t: 'ack', id, dup: true });
          case 'conflict':
            return reject(ws, 'batch_id_conflict', 'This batch id is already stored for another device.', 'id');
          case 'reused':
            return reject(ws, 'batch_id_reused', 'This batch id is already stored with other content; a new batch needs a new id.', 'id');
          case 'overlap':
            return reject(ws, 'seq_overlap', 'The server already holds some of these seqs under another batch id.', 'first');
          case 'failed':
            return reject(ws, 'internal_error', 'The batch could not be stored; resend it later.');
          case 'unavailable':
            return reject(ws, 'storage_unavailable', 'Storage refuses writes (disk or map full); the batch is not acked, resend it later.');
        }
      },
    );
  }

  /** A heartbeat; its optional `tuned` counts (events the agent's tuning filters dropped) are added up per tenant and day. */
  function onHeartbeat(ws: uWS.WebSocket<Session>, bytes: Uint8Array): void {
    send(ws, { t: 'hb', ts: clock.now() });
    // A plain heartbeat ({t, ts}: at most 18 bytes) has no counts: only larger ones are decoded.
    if (bytes.byteLength > MAX_HB_DECODE_BYTES || bytes.byteLength <= 18) return;
    let raw: unknown;
    try {
      raw = decode(bytes);
    } catch {
      return reject(ws, 'malformed_frame', 'The frame is not valid MessagePack.');
    }
    const tuned = (raw as { tuned?: { events?: unknown; bytes?: unknown } }).tuned;
    if (typeof tuned !== 'object' || tuned === null) return;
    const { events, bytes: size } = tuned;
    const valid = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= MAX_TUNED_PER_REPORT;
    if (!valid(events) || !valid(size)) return;
    const supportId = ws.getUserData().device!.supportId;
    const day = tokyoDay(clock.now());
    const key = `${supportId}\u0000${day}`;
    const entry = tunedPending.get(key) ?? { supportId, day, events: 0, bytes: 0 };
    entry.events += events;
    entry.bytes += size;
    tunedPending.set(key, entry);
  }

  function flushTuned(): Promise<void> {
    if (tunedPending.size === 0) return Promise.resolve();
    const list = [...tunedPending.values()];
    tunedPending = new Map();
    return store.fleet.addSavings(list.map((e) => ({ supportId: e.supportId, day: e.day, delta: { agentEvents: e.events, agentBytes: e.bytes } })));
  }

  function pushFleetPolicy(supportId: string): number {
    const fleet = store.fleet.agentPolicy(supportId);
    const bytes = encode({ t: 'policy', fleet });
    let sent = 0;
    for (const ws of live.values()) {
      const session = ws.getUserData();
      if (session.state !== 'ready' || session.device?.supportId !== supportId) continue;
      ws.send(bytes, true);
      sent++;
    }
    return sent;
  }

  function onInventory(ws: uWS.WebSocket<Session>, bytes: Uint8Array): void {
    if (bytes.byteLength > config.maxInventoryBytes) {
      return reject(ws, 'invalid_field', 'The inventory is larger than allowed.', 'inv');
    }
    let raw: unknown;
    try {
      raw = decode(bytes);
    } catch {
      return reject(ws, 'malformed_frame', 'The frame is not valid MessagePack.');
    }
    const { t: _t, ...inventory } = raw as Record<string, unknown>;
    const device = ws.getUserData().device!;
    store.devices.setInventory(device.tmid, { ...inventory, receivedAt: clock.now() }).catch(logFailure('An inventory could not be stored.'));
  }

  function onMessage(ws: uWS.WebSocket<Session>, message: ArrayBuffer, isBinary: boolean): void {
    const session = ws.getUserData();
    if (session.state === 'closed') return;
    if (!accepting) return; // Shutting down: unacked batches will be resent after the restart.
    if (!isBinary) return reject(ws, 'malformed_frame', 'Text frames are not supported; send binary MessagePack.');
    if (message.byteLength > config.maxFrameBytes) {
      return reject(ws, 'frame_too_large', `Frames are limited to ${config.maxFrameBytes} bytes.`);
    }
    const bytes = new Uint8Array(message);
    const scanned = scanFrame(bytes, config.maxFrameDepth);
    if (!scanned.ok) return reject(ws, scanned.reason, `The frame is invalid: ${scanned.detail}.`);
    const env = scanned.envelope;
    metrics.ingestFramesTotal.inc({ type: env.t });
    if (env.t === 'hello') {
      if (bytes.byteLength > SMALL_FRAME_BYTES) return reject(ws, 'frame_too_large', 'hello frames are limited to 64 KiB.');
      return onHello(ws, bytes);
    }
    if (env.t !== 'batch' && env.t !== 'hb' && env.t !== 'inv' && env.t !== 'cmdr') {
      return reject(ws, 'unknown_frame_type', `Frame type ${JSON.stringify(env.t).slice(0, 40)} is not known.`, 't');
    }
    if (session.state !== 'ready') return reject(ws, 'hello_required', 'The first frame must be hello.');
    lastSeen.touch(session.device!.tmid, clock.now());
    switch (env.t) {
      case 'batch':
        return onBatch(ws, bytes, env);
      case 'hb':
        return onHeartbeat(ws, bytes);
      case 'inv':
        return onInventory(ws, bytes);
      case 'cmdr':
        if (bytes.byteLength > SMALL_FRAME_BYTES) return reject(ws, 'frame_too_large', 'cmdr frames are limited to 64 KiB.');
        return onCommandResult(ws, bytes);
    }
  }

  app.ws<Session>(config.path, {
    compression: uWS.DISABLED,
    // Frames up to 2x the limit reach the handler and get a proper error frame; beyond that uWS cuts them.
    maxPayloadLength: config.maxFrameBytes * 2,
    idleTimeout: config.idleTimeoutSec,
    // Acks are tiny: only an agent that stops reading ever builds backpressure, and acks must never be dropped.
    maxBackpressure: 64 * 1024 * 1024,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      if (!accepting) {
        res.writeStatus('503 Service Unavailable').end('shutting down');
        return;
      }
      if (sockets.size >= config.maxConnections) {
        metrics.ingestRejectsTotal.inc({ reason: 'too_many_connections' });
        rejectsByReason.too_many_connections = (rejectsByReason.too_many_connections ?? 0) + 1;
        res.writeStatus('503 Service Unavailable').writeHeader('Retry-After', '30').end(TOO_MANY_CONNECTIONS, true);
        return;
      }
      const session: Session = { state: 'awaiting_hello', openedAt: clock.now(), device: undefined };
      res.upgrade(
        session,
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      sockets.add(ws);
      awaitingHello.add(ws);
      metrics.ingestConnections.inc();
    },
    message: (ws, message, isBinary) => {
      try {
        onMessage(ws, message, isBinary);
      } catch (err) {
        log.error({ err }, 'Unexpected failure while handling a frame.');
        reject(ws, 'internal_error', 'The server failed to handle the frame.');
      }
    },
    close: (ws, code, message) => {
      const session = ws.getUserData();
      // uWS cuts a frame over maxPayloadLength itself (TCP close, 1006 at the agent, no error frame):
      // count it with the frames refused here, so the operator sees it.
      if (code === 1006 && session.state !== 'closed' && Buffer.from(message).toString().includes('too big')) {
        metrics.ingestRejectsTotal.inc({ reason: 'frame_too_large' });
        rejectsByReason.frame_too_large = (rejectsByReason.frame_too_large ?? 0) + 1;
      }
      session.state = 'closed';
      sockets.delete(ws);
      awaitingHello.delete(ws);
      metrics.ingestConnections.dec();
      const device = session.device;
      // A superseded connection leaves the device connected through the newer one.
      if (device !== undefined && live.get(device.tmid) === ws) {
        lastSeen.forget(device.tmid);
        live.delete(device.tmid);
        const at = clock.now();
        store.devices.patch(device.tmid, (current) => ({ ...current, connected: false, lastSeen: Math.max(current.lastSeen, at) })).catch(logFailure('The device record could not be updated at close.'));
        options.onDeviceConnection?.({ tmid: device.tmid, supportId: device.supportId, connected: false, at });
      }
    },
  });

  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end('kiseki agent endpoint: connect a WebSocket to ' + config.path);
  });

  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (token) => {
      if (token) resolve(token);
      else reject(new KisekiError('ERR_LISTEN_FAILED', { host: config.host, port: config.port, component: 'ingest' }));
    });
  });
  const port = uWS.us_socket_local_port(listenSocket);

  // One timer for all connections: a hello timeout per socket would cost a Timeout object per agent.
  const helloSweep = setInterval(() => {
    const deadline = clock.now() - config.helloTimeoutMs;
    for (const ws of awaitingHello) {
      if (ws.getUserData().openedAt <= deadline) {
        awaitingHello.delete(ws);
        reject(ws, 'hello_timeout', `No hello within ${config.helloTimeoutMs} ms.`);
      }
    }
  }, Math.min(HELLO_SWEEP_MS, config.helloTimeoutMs));

  // lastSeen of live devices is written about once a minute each, a slice every LAST_SEEN_TICK_MS (last-seen.ts).
  const seenFlush = setInterval(() => lastSeen.tick(), LAST_SEEN_TICK_MS);
  const tunedFlush = setInterval(() => flushTuned().catch(logFailure('Tuning savings reported by agents could not be stored.')), 5_000);

  const rejectLog = setInterval(() => {
    if (Object.keys(rejectsByReason).length === 0) return;
    log.warn({ rejects: rejectsByReason }, 'Agent frames rejected in the last minute.');
    rejectsByReason = {};
  }, 60_000);
  rejectLog.unref();

  log.info({ port, path: config.path, tls: config.tlsCertFile !== undefined }, 'Agent endpoint listening.');

  return {
    port,
    connections: () => sockets.size,
    deliverCommands,
    isConnected: (tmid) => live.has(tmid),
    pushFleetPolicy,
    async close() {
      accepting = false;
      uWS.us_listen_socket_close(listenSocket);
      clearInterval(helloSweep);
      clearInterval(seenFlush);
      clearInterval(tunedFlush);
      clearInterval(rejectLog);
      await committer.idle();
      for (const ws of [...sockets]) reject(ws, 'server_shutting_down', 'The server is stopping; reconnect later.');
      // uWS may run close handlers (which mark devices disconnected) on the next loop turn.
      await new Promise((resolve) => setImmediate(resolve));
      await flushTuned().catch(logFailure('Tuning savings reported by agents could not be stored.'));
      await store.flushed();
    },
  };
}
