/**
 * A round that runs again `intervalMs` after the previous one finished (never
 * two at once), until stopped; `stop()` waits for a running round, so nothing
 * is left half-done at shutdown. What the notifier, the report scheduler, the
 * TAXII poller and the network-intel matcher each run on.
 */

export interface TimerLoop {
  /** Stops scheduling rounds and resolves when a running one ended. */
  stop(): Promise<void>;
}

/**
 * Starts the loop: the first round after `firstDelayMs` (default 0).
 * `round`'s rejections go to `onError` and the loop goes on.
 */
export function startTimerLoop(round: () => Promise<unknown>, intervalMs: number, onError: (err: unknown) => void, firstDelayMs = 0): TimerLoop {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  const loop = (): void => {
    running = round()
      .catch(onError)
      .finally(() => {
        if (timer !== undefined) timer = setTimeout(loop, intervalMs);
      });
  };
  timer = setTimeout(loop, firstDelayMs);
  return {
    async stop() {
      const t = timer;
      timer = undefined;
      if (t !== undefined) clearTimeout(t);
      await running;
    },
  };
}
