/**
 * The stored `lastSeen` of connected devices, refreshed a few devices at a
 * time. A frame only notes its time in memory; each device's record is
 * rewritten about once per `refreshMs`, spread evenly over it.
 *
 * Why: the sweep used to rewrite every connected device every 5 s. At 19,000
 * agents that was 19,000 record reads, decodes, copies and writes in one turn
 * of the ingest thread: ack p99 of an idle fleet went to 250–450 ms every
 * 5 s, and the copies waiting for their write were a third of what the
 * thread's heap kept past its young generation (fanin-19k). The value is
 * what liveness reads once a device is gone, and the disconnect writes it
 * exactly; while a device is connected the API shows the later of it and the
 * device's last batch, so a minute's resolution loses nothing a user sees.
 */

export interface LastSeenRefresherOptions {
  /** Writes `at` as the device's lastSeen (when newer than the stored one); must not throw. */
  write: (tmid: string, at: number) => void;
  /** Each connected device is written about once this often, ms. */
  refreshMs: number;
  /** How often `tick` is called, ms: each tick writes a tickMs / refreshMs share of the devices. */
  tickMs: number;
}

export class LastSeenRefresher {
  private readonly seen = new Map<string, number>();
  private readonly options: LastSeenRefresherOptions;
  private cursor: Iterator<[string, number]> | undefined;

  constructor(options: LastSeenRefresherOptions) {
    this.options = options;
  }

  /** Notes that the device was heard from at `at` (memory only). */
  touch(tmid: string, at: number): void {
    this.seen.set(tmid, at);
  }

  /** The device disconnected: its close writes lastSeen itself. */
  forget(tmid: string): void {
    this.seen.delete(tmid);
  }

  get size(): number {
    return this.seen.size;
  }

  /** Writes the next share of the devices, in turn; returns how many it wrote. */
  tick(): number {
    // At most every device once a tick.
    const due = Math.min(this.seen.size, Math.ceil((this.seen.size * this.options.tickMs) / this.options.refreshMs));
    let written = 0;
    let wrapped = false;
    while (written < due) {
      // A Map iterator survives inserts and deletes: new devices are reached in this round, gone ones skipped.
      const next = (this.cursor ??= this.seen.entries()).next();
      if (next.done === true) {
        this.cursor = undefined;
        // An empty map: nothing to write.
        if (wrapped) break;
        wrapped = true;
        continue;
      }
      this.options.write(next.value[0], next.value[1]);
      written++;
    }
    return written;
  }
}
