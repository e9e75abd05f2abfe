/**
 * Response actions (SPEC §8), one lifecycle in one place: a command is
 * created and queued (by an operator through the API, or by the engine on a
 * black verdict), delivered when its device is connected (by the agent
 * server, through `deliver`), acknowledged, done or failed as the agent
 * reports, and expired when it waited too long. The isolation state a done
 * isolate / release confirms is recorded here too. Every state is kept in
 * LMDB, so an offline device gets its queued commands when it reconnects and
 * every request and result can be shown and audited.
 *
 * States: queued → sent → acknowledged → done / failed; queued or sent →
 * expired or cancelled. Moves to `sent` and `expired` are checked against
 * the state inside the write transaction, so a cancel is never overwritten
 * by a delivery racing it and a cancelled command is never sent again.
 *
 * Key layouts (kiseki.lmdb):
 *   commands         command id                  -> CommandRecord
 *   device-commands  [tmid, requestedAt, id]     -> id (a device's commands, oldest first)
 *   isolation        tmid                        -> DeviceIsolation (as last confirmed by the agent)
 */
import { randomBytes } from 'node:crypto';
import { COMMAND_EXPIRY_MS, type CommandRequest } from '../core/contracts.js';
import { KisekiError } from '../core/errors.js';
import { MAX_COMMAND_ARGS_BYTES, MAX_COMMAND_ARGS_DEPTH, valueDepth } from '../core/msgpack-bounds.js';
import type { CommandRecord, CommandState, DeviceIsolation } from './records.js';
import { appendFeedSync } from './feed.js';
import type { Tables } from './tables.js';

/** A new random command id: `cmd_` and 24 hex characters. */
export function newCommandId(): string {
  return `cmd_${randomBytes(12).toString('hex')}`;
}

/** What a caller asks for; id, state and expiry get defaults. */
export type CommandInput = Omit<CommandRequest, 'id' | 'state' | 'expiresAt'> & { id?: string; expiresAt?: number };

/** What an agent reports about a command it was sent. */
export interface CommandOutcome {
  status: 'acknowledged' | 'done' | 'failed';
  at: number;
  result?: Record<string, unknown>;
  error?: string;
}

/** A move of a command to a new state, with the agent's result or error. */
export interface CommandChange {
  state: CommandState;
  at: number;
  result?: Record<string, unknown> | undefined;
  error?: string | undefined;
}

export interface CommandRepository {
  /**
   * A new queued command record (not stored): `expiresAt` defaults to
   * COMMAND_EXPIRY_MS after the request, the id to a random one.
   * @throws KisekiError ERR_COMMAND_ARGS_TOO_LARGE when `args` nests deeper than
   * MAX_COMMAND_ARGS_DEPTH (16) or is larger than MAX_COMMAND_ARGS_BYTES (16 KiB as JSON):
   * such a command could not be encoded for its device.
   */
  create(input: CommandInput): CommandRecord;
  /** Creates and stores a command; resolves when it is durable. */
  queue(input: CommandInput): Promise<CommandRecord>;
  /** Inside `store.transaction()`: stores a created command (the engine queues with its flush). */
  queueSync(command: CommandRecord): void;
  get(id: string): CommandRecord | undefined;
  /** A device's commands, oldest first. */
  forDevice(tmid: string): CommandRecord[];
  /** Commands of a device still to deliver (queued, or sent but never acknowledged), oldest first. */
  pendingFor(tmid: string): CommandRecord[];
  /**
   * Delivers a connected device's pending commands: expires those past
   * their expiry, hands the others to `send` (oldest first) and marks the
   * queued ones sent. Resends sent-but-unacknowledged ones. A command that
   * `send` throws on (it cannot be encoded) is failed with error
   * `undeliverable` and the others still go: one bad command never cuts its
   * device off. Resolves when the state changes are stored.
   */
  deliver(tmid: string, now: number, send: (command: CommandRecord) => void): Promise<void>;
  /**
   * Records what the agent reported; a done isolate or release also records
   * the device's isolation state. Returns the updated command (undefined if unknown).
   */
  recordOutcome(id: string, outcome: CommandOutcome): Promise<CommandRecord | undefined>;
  /**
   * Moves a command to a state (for expiry and tests); with `from`, only when
   * its current state is one of them (checked in the write transaction).
   * Returns the updated record, or undefined when unknown or not moved.
   */
  update(id: string, change: CommandChange & { from?: readonly CommandState[] }): Promise<CommandRecord | undefined>;
  /**
   * Cancels a command that is queued, or sent and not acknowledged: it
   * becomes `cancelled` and is never delivered again. Returns the updated
   * record, or the current one with `cancelled: false` when its state does
   * not allow it (undefined when unknown).
   */
  cancel(id: string, by: string, at: number): Promise<{ cancelled: boolean; command: CommandRecord } | undefined>;
  /** Isolation as last confirmed by the device's agent. */
  isolation(tmid: string): DeviceIsolation | undefined;
  /**
   * A copy of a command another node holds (cluster/commands-sync.ts): stored when new here, or when its state is
   * further along the lifecycle than the local one (never back: a late copy of an earlier state is ignored); a done
   * isolate or release records the isolation as `recordOutcome` does, without a feed entry (the node whose agent
   * confirmed it wrote that). Resolves with the stored record when it changed anything, else undefined.
   */
  mirror(command: CommandRecord): Promise<CommandRecord | undefined>;
}

/**
 * How far along its lifecycle a state is: a copy only ever moves a command forward. The end states share a rank:
 * the first one stored stands.
 */
export function commandStateRank(state: CommandState): number {
  switch (state) {
    case 'queued':
      return 0;
    case 'sent':
      return 1;
    case 'acknowledged':
      return 2;
    default:
      return 3;
  }
}

/** Refuses args that could not be encoded for the device (depth) or that no command needs (size). */
function checkArgs(args: unknown): void {
  const depth = valueDepth(args, MAX_COMMAND_ARGS_DEPTH);
  if (depth > MAX_COMMAND_ARGS_DEPTH) {
    throw new KisekiError('ERR_COMMAND_ARGS_TOO_LARGE', { reason: `args nest deeper than ${MAX_COMMAND_ARGS_DEPTH} levels`, maxDepth: MAX_COMMAND_ARGS_DEPTH });
  }
  // Depth is bounded, so JSON.stringify cannot overflow the stack here.
  const bytes = JSON.stringify(args ?? null).length;
  if (bytes > MAX_COMMAND_ARGS_BYTES) {
    throw new KisekiError('ERR_COMMAND_ARGS_TOO_LARGE', { reason: `args are larger than ${MAX_COMMAND_ARGS_BYTES} bytes`, maxBytes: MAX_COMMAND_ARGS_BYTES });
  }
}

/** The command repository over the hot store's tables (called by openHotStore). */
export function createCommandRepository(t: Tables): CommandRepository {
  const { commands, deviceCommands, isolation } = t;
  const create = (input: CommandInput): CommandRecord => {
    checkArgs(input.args);
    return {
    ...input,
    id: input.id ?? newCommandId(),
    state: 'queued',
    expiresAt: input.expiresAt ?? input.requestedAt + COMMAND_EXPIRY_MS,
    updatedAt: input.requestedAt,
    };
  };
  const queueSync = (c: CommandRecord): void => {
    commands.putSync(c.id, c);
    deviceCommands.putSync([c.tmid, c.requestedAt, c.id], c.id);
  };
  const forDevice = (tmid: string): CommandRecord[] => {
    const out: CommandRecord[] = [];
    for (const key of deviceCommands.getKeys({ start: [tmid], end: [tmid, Infinity] })) {
      const c = commands.get(key[2]);
      if (c !== undefined) out.push(c);
    }
    return out;
  };
  const pendingFor = (tmid: string): CommandRecord[] => forDevice(tmid).filter((c) => c.state === 'queued' || c.state === 'sent');
  const changed = (current: CommandRecord, change: CommandChange): CommandRecord => ({
    ...current,
    state: change.state,
    updatedAt: change.at,
    ...(change.result === undefined ? {} : { result: change.result }),
    ...(change.error === undefined ? {} : { error: change.error }),
  });
  const update: CommandRepository['update'] = (id, change) =>
    commands.transaction(() => {
      const current = commands.get(id);
      if (current === undefined || (change.from !== undefined && !change.from.includes(current.state))) return undefined;
      const next = changed(current, change);
      commands.putSync(id, next);
      return next;
    });
  const CANCELLABLE: readonly CommandState[] = ['queued', 'sent'];
  /** Inside a transaction: the isolation a done isolate or release confirmed. */
  const putIsolationSync = (c: CommandRecord, at: number): void => {
    const allow = Array.isArray(c.args.allow) ? (c.args.allow as { cidr: string; port?: number }[]) : [];
    isolation.putSync(c.tmid, { state: c.kind === 'isolate' ? 'isolated' : 'released', since: at, allow: c.kind === 'isolate' ? allow : [], commandId: c.id });
  };
  const confirmsIsolation = (c: CommandRecord): boolean => c.state === 'done' && (c.kind === 'isolate' || c.kind === 'release');
  return {
    create,
    async queue(input) {
      const record = create(input);
      await commands.transaction(() => queueSync(record));
      await t.root.flushed;
      return record;
    },
    queueSync,
    get: (id) => commands.get(id),
    forDevice,
    pendingFor,
    async deliver(tmid, now, send) {
      const changes: Promise<unknown>[] = [];
      for (const c of pendingFor(tmid)) {
        // A state change that fails (disk full) leaves the command as it was: it is
        // expired or marked sent again at the next delivery; never an unhandled rejection.
        if (c.expiresAt <= now) {
          changes.push(update(c.id, { state: 'expired', at: now, from: CANCELLABLE }));
          continue;
        }
        try {
          send(c);
        } catch {
          // Stored before the args limit existed, or otherwise unencodable: fail it rather than retry it forever.
          changes.push(update(c.id, { state: 'failed', at: now, error: 'undeliverable', from: CANCELLABLE }));
          continue;
        }
        if (c.state === 'queued') changes.push(update(c.id, { state: 'sent', at: now, from: ['queued'] }));
      }
      await Promise.all(changes);
    },
    async recordOutcome(id, outcome) {
      const current = commands.get(id);
      if (current === undefined) return undefined;
      const next = changed(current, { state: outcome.status, at: outcome.at, result: outcome.result, error: outcome.error });
      // One transaction: whoever sees the command done also sees the isolation state it set.
      await commands.transaction(() => {
        commands.putSync(id, next);
        if (confirmsIsolation(next)) {
          putIsolationSync(next, outcome.at);
          // Notifications see the isolation in the same commit (storage/feed.ts).
          if (next.kind === 'isolate') appendFeedSync(t, { kind: 'device.isolated', supportId: next.supportId, at: outcome.at, tmid: next.tmid, by: next.requestedBy });
        }
      });
      return next;
    },
    update,
    async cancel(id, by, at) {
      const outcome = await commands.transaction(() => {
        const current = commands.get(id);
        if (current === undefined) return undefined;
        if (!CANCELLABLE.includes(current.state)) return { cancelled: false, command: current };
        const next: CommandRecord = { ...current, state: 'cancelled', updatedAt: at, cancelledBy: by };
        commands.putSync(id, next);
        return { cancelled: true, command: next };
      });
      // Durable before the caller answers: a device reconnecting now must not get it.
      await t.root.flushed;
      return outcome;
    },
    isolation: (tmid) => isolation.get(tmid),
    mirror: (c) =>
      commands.transaction(() => {
        const current = commands.get(c.id);
        if (current !== undefined && commandStateRank(c.state) <= commandStateRank(current.state)) return undefined;
        if (current === undefined) queueSync(c);
        else commands.putSync(c.id, c);
        if (confirmsIsolation(c)) putIsolationSync(c, c.updatedAt ?? c.requestedAt);
        return c;
      }),
  };
}
