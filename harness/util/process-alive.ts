// Whether a process still exists: for files that name their owner by pid (build locks, host-change
// journals), where a dead owner's file is stale.

/** True while `pid` exists, including one this user may not signal (EPERM). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
