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
 * States: queued → sent → acknowledged → done / failed; queued or sent → expired.
 *
 * Key layouts (kiseki.lmdb):
 *   commands         command id                  -> CommandRecord
 *   device-commands  [tmid, requestedAt, id]     -> id (a device's commands, oldest first)
 *   isolation        tmid                        -> DeviceIsolation (as last confirmed by the agent)
 */
import { randomBytes } from 'node:crypto';
import { COMMAND_EXPIRY_MS, type CommandRequest } from '../core/contracts.js';
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

export interface CommandRepository {
  /**
   * A new queued command record (not stored): `expiresAt` defaults to
   * COMMAND_EXPIRY_MS after the request, the id to a random one.
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
   * queued ones sent. Resends sent-but-unacknowledged ones.
   */
  deliver(tmid: string, now: number, send: (command: CommandRecord) => void): void;
  /**
   * Records what the agent reported; a done isolate or release also records
   * the device's isolation state. Returns the updated command (undefined if unknown).
   */
  recordOutcome(id: string, outcome: CommandOutcome): Promise<CommandRecord | undefined>;
  /** Moves a command to a state (for expiry and tests); returns the updated record. */
  update(id: string, change: { state: CommandState; at: number; result?: Record<string, unknown>; error?: string }): Promise<CommandRecord | undefined>;
  /** Isolation as last confirmed by the device's agent. */
  isolation(tmid: string): DeviceIsolation | undefined;
}

/** The command repository over the hot store's tables (called by openHotStore). */
export function createCommandRepository(t: Tables): CommandRepository {
  const { commands, deviceCommands, isolation } = t;
  const create = (input: CommandInput): CommandRecord => ({
    ...input,
    id: input.id ?? newCommandId(),
    state: 'queued',
    expiresAt: input.expiresAt ?? input.requestedAt + COMMAND_EXPIRY_MS,
    updatedAt: input.requestedAt,
  });
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
  const update: CommandRepository['update'] = async (id, change) => {
    const current = commands.get(id);
    if (current === undefined) return undefined;
    const next: CommandRecord = {
      ...current,
      state: change.state,
      updatedAt: change.at,
      ...(change.result === undefined ? {} : { result: change.result }),
      ...(change.error === undefined ? {} : { error: change.error }),
    };
    await commands.put(id, next);
    return next;
  };
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
    deliver(tmid, now, send) {
      for (const c of pendingFor(tmid)) {
        if (c.expiresAt <= now) {
          void update(c.id, { state: 'expired', at: now });
          continue;
        }
        send(c);
        if (c.state === 'queued') void update(c.id, { state: 'sent', at: now });
      }
    },
    async recordOutcome(id, outcome) {
      const current = commands.get(id);
      if (current === undefined) return undefined;
      const next: CommandRecord = {
        ...current,
        state: outcome.status,
        updatedAt: outcome.at,
        ...(outcome.result === undefined ? {} : { result: outcome.result }),
        ...(outcome.error === undefined ? {} : { error: outcome.error }),
      };
      const changesIsolation = outcome.status === 'done' && (next.kind === 'isolate' || next.kind === 'release');
      const allow = Array.isArray(next.args.allow) ? (next.args.allow as { cidr: string; port?: number }[]) : [];
      // One transaction: whoever sees the command done also sees the isolation state it set.
      await commands.transaction(() => {
        commands.putSync(id, next);
        if (changesIsolation) {
          isolation.putSync(next.tmid, {
            state: next.kind === 'isolate' ? 'isolated' : 'released',
            since: outcome.at,
            allow: next.kind === 'isolate' ? allow : [],
            commandId: next.id,
          });
          // Notifications see the isolation in the same commit (storage/feed.ts).
          if (next.kind === 'isolate') appendFeedSync(t, { kind: 'device.isolated', supportId: next.supportId, at: outcome.at, tmid: next.tmid, by: next.requestedBy });
        }
      });
      return next;
    },
    update,
    isolation: (tmid) => isolation.get(tmid),
  };
}
