/**
 * Response-action commands (SPEC §8): each has an id and a state
 * (queued → sent → acknowledged → done / failed / expired) kept in LMDB, so an
 * offline device gets its queued commands when it reconnects, and every
 * request and result can be shown and audited.
 */
import { randomBytes } from 'node:crypto';
import type { CommandRequest } from '../core/contracts.js';
import type { HotStore } from './hot-store.js';

export type CommandKind = CommandRequest['kind'];
export type CommandState = CommandRequest['state'];

/** What a command record holds beyond the request: its last change and result. */
export interface CommandRecord extends CommandRequest {
  /** Absent on commands the engine queued and nobody touched since. */
  updatedAt?: number;
  result?: Record<string, unknown>;
  error?: string;
}

export function newCommandId(): string {
  return `cmd_${randomBytes(12).toString('hex')}`;
}

export async function queueCommand(
  store: HotStore,
  input: Omit<CommandRequest, 'id' | 'state'> & { id?: string; expiresAt: number },
): Promise<CommandRecord> {
  const record: CommandRecord = { ...input, id: input.id ?? newCommandId(), state: 'queued', updatedAt: input.requestedAt };
  await store.commands.transaction(() => {
    store.commands.putSync(record.id, record);
    store.deviceCommands.putSync([record.tmid, record.requestedAt, record.id], record.id);
  });
  await store.flushed();
  return record;
}

export function readCommand(store: HotStore, id: string): CommandRecord | undefined {
  return store.commands.get(id) as CommandRecord | undefined;
}

/** A device's commands, oldest first. */
export function deviceCommands(store: HotStore, tmid: string): CommandRecord[] {
  const out: CommandRecord[] = [];
  for (const key of store.deviceCommands.getKeys({ start: [tmid], end: [tmid, Infinity] })) {
    const c = readCommand(store, key[2]);
    if (c !== undefined) out.push(c);
  }
  return out;
}

/** Moves a command to a new state with its result; returns the updated record (undefined if unknown). */
export async function updateCommand(
  store: HotStore,
  id: string,
  change: { state: CommandState; at: number; result?: Record<string, unknown>; error?: string },
): Promise<CommandRecord | undefined> {
  const current = readCommand(store, id);
  if (current === undefined) return undefined;
  const next: CommandRecord = {
    ...current,
    state: change.state,
    updatedAt: change.at,
    ...(change.result === undefined ? {} : { result: change.result }),
    ...(change.error === undefined ? {} : { error: change.error }),
  };
  await store.commands.put(id, next);
  return next;
}

/** Commands of a device still to deliver (queued, or sent but never acknowledged), oldest first. */
export function pendingCommands(store: HotStore, tmid: string): CommandRecord[] {
  return deviceCommands(store, tmid).filter((c) => c.state === 'queued' || c.state === 'sent');
}
