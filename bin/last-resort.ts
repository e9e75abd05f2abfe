/**
 * The process-level last resort of `kiseki start` (issue 11): what happens to
 * an error that no code path handled.
 *
 * - An unhandled promise rejection is logged with its stack, counted
 *   (`kiseki_process_unhandled_rejections_total`) and the server keeps
 *   serving. A rejected promise has already unwound: no invariant was left
 *   half done by a throw in the middle of synchronous code, and every durable
 *   state change in kiseki is an LMDB transaction that either committed or
 *   did not. lmdb-js itself leaves such rejections behind when a commit fails
 *   (disk full), and a bug in an unawaited store write must not stop ingest
 *   for every agent.
 * - An uncaught exception is logged and the process exits (code 70) after a
 *   bounded attempt to shut down cleanly: a throw from an event handler may
 *   have left in-memory state (commit groups, shard queues) inconsistent, so
 *   continuing is not safe. Nothing acked is lost: acks follow durable commits,
 *   and a restart replays the log from the shards' checkpoints. A supervisor
 *   (systemd `Restart=on-failure`) starts it again.
 */
import type { Logger } from '../core/logger.js';

/** Exit code after an uncaught exception (EX_SOFTWARE). */
export const EXIT_UNCAUGHT = 70;

/** The part of `process` the last resort uses (an EventEmitter in tests). */
export interface ProcessLike {
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  on(event: 'uncaughtException', listener: (err: Error) => void): unknown;
  off(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  off(event: 'uncaughtException', listener: (err: Error) => void): unknown;
}

export interface LastResortOptions {
  logger: Logger;
  /** Counts rejections (the metrics registry's counter; optional before the service exists). */
  countRejection?: () => void;
  /** Clean shutdown attempted after an uncaught exception; bounded by `shutdownTimeoutMs`. */
  shutdown?: () => Promise<void>;
  /** Default 10,000 ms. */
  shutdownTimeoutMs?: number;
  exit: (code: number) => void;
  process?: ProcessLike;
}

/**
 * Installs the handlers on `process` (or `options.process`).
 * @returns a function that removes them (tests) and a setter for the shutdown hook, known only once the service runs.
 */
export function installLastResort(options: LastResortOptions): { uninstall(): void; setShutdown(fn: () => Promise<void>): void } {
  const proc = options.process ?? process;
  const log = options.logger.child({ component: 'last-resort' });
  let shutdown = options.shutdown;
  let exiting = false;
  const onRejection = (reason: unknown): void => {
    options.countRejection?.();
    log.error({ err: reason }, 'An unhandled promise rejection reached the last resort; it is logged and the server keeps serving.');
  };
  const onException = (err: Error): void => {
    log.fatal({ err }, 'An uncaught exception reached the last resort; shutting down (exit 70) because in-memory state may be inconsistent.');
    if (exiting) return;
    exiting = true;
    const timeoutMs = options.shutdownTimeoutMs ?? 10_000;
    if (shutdown === undefined) return options.exit(EXIT_UNCAUGHT);
    const timer = setTimeout(() => options.exit(EXIT_UNCAUGHT), timeoutMs);
    timer.unref();
    shutdown().then(
      () => options.exit(EXIT_UNCAUGHT),
      (closeErr: unknown) => {
        log.error({ err: closeErr }, 'Shutdown after the uncaught exception failed.');
        options.exit(EXIT_UNCAUGHT);
      },
    );
  };
  proc.on('unhandledRejection', onRejection);
  proc.on('uncaughtException', onException);
  return {
    uninstall() {
      proc.off('unhandledRejection', onRejection);
      proc.off('uncaughtException', onException);
    },
    setShutdown(fn) {
      shutdown = fn;
    },
  };
}
