import { readFileSync } from "node:fs";

/** Sends a signal to a process group; a group with no process left is not an error. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

let procMounted: boolean | undefined;
function hasProc(): boolean {
  if (procMounted === undefined) {
    try {
      readFileSync("/proc/self/stat");
      procMounted = true;
    } catch {
      procMounted = false;
    }
  }
  return procMounted;
}

/**
 * Whether a process is still running. A zombie (exited, not yet reaped because its parent is gone
 * or slow) counts as dead: it holds no resources and will never exit "again".
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // Without /proc (not Linux) the signal probe above is all there is.
  if (!hasProc()) return true;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  // The command name in parentheses may itself hold spaces or parentheses: the state follows the last ")".
  const close = stat.lastIndexOf(")");
  const state = stat.slice(close + 2, close + 3);
  return state !== "Z" && state !== "X";
}
