/**
 * Whether a process id is alive on this host, for lock files and job owners
 * that must tell a live holder from one a kill -9 left behind.
 */

/** True when `pid` names a live process (EPERM: it exists but belongs to another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
