/**
 * Structured logging with pino. Components take a child logger made once at
 * construction; hot paths log counts per interval, never per event, and never
 * payloads, tokens or keys.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** Creates the root logger writing JSON lines to stderr (stdout is for command output). */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { service: 'kiseki' } }, pino.destination({ fd: 2, sync: false }));
}

/** A logger that discards everything, for tests and quiet commands. */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
