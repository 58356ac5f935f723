import { open } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
import { execa } from "execa";
import { JiraImagesError } from "../errors.ts";
import { parseMachineReadable } from "../machine-readable.ts";
import { signalGroup } from "./processes.ts";

export interface PackerExit {
  /** Undefined when Packer was killed by a signal. */
  exitCode?: number;
  signal?: string;
}

export interface PackerProcess {
  pid: number;
  exited: Promise<PackerExit>;
  /** SIGINT to Packer's process group: what Ctrl-C in a terminal does, and what Packer's cleanup expects. */
  interrupt(): void;
}

function notFound(bin: string, cause: unknown): JiraImagesError {
  return new JiraImagesError(
    "PACKER_NOT_FOUND",
    `cannot run ${JSON.stringify(bin)} (PACKER_BIN or packer on PATH); install Packer ` +
      "(apt-get install -y packer, or https://developer.hashicorp.com/packer/install)",
    { cause },
  );
}

function isEnoent(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === "ENOENT";
}

/**
 * Starts Packer in its own process group, writing straight to the log file descriptor: no pipe
 * to the runner, so a dead runner can never kill Packer with SIGPIPE mid-cleanup, and a signal
 * sent to the runner's group (a terminal's Ctrl-C, the Pulumi plugin's shutdown) reaches Packer
 * only through the runner, which decides how to interrupt it.
 */
export function startPacker(
  bin: string,
  args: string[],
  options: { logFd: number; env: NodeJS.ProcessEnv; cwd: string },
): PackerProcess {
  // execa's types list only descriptors 3-9 here; at runtime any descriptor goes to spawn() as is,
  // so Packer's stdout is the log file itself (the stand-in packer's tests check /proc/self/fd/1).
  const logFd = options.logFd as 3;
  const child = execa(bin, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: false,
    detached: true,
    cleanup: false,
    stdin: "ignore",
    stdout: logFd,
    stderr: logFd,
    buffer: false,
    reject: false,
  });
  const exited = child.then((result): PackerExit => {
    if (result.failed && result.exitCode === undefined && result.signal === undefined) {
      throw isEnoent(result.cause) ? notFound(bin, result.cause) : new JiraImagesError("PACKER_START", result.shortMessage ?? "packer did not start");
    }
    return {
      ...(result.exitCode !== undefined ? { exitCode: result.exitCode } : {}),
      ...(result.signal !== undefined ? { signal: result.signal } : {}),
    };
  });
  const pid = child.pid ?? -1;
  return {
    pid,
    exited,
    interrupt() {
      if (pid > 0) signalGroup(pid, "SIGINT");
    },
  };
}

/** `packer -machine-readable version`, read with the same parser as the build. */
export async function packerVersion(bin: string, env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  const result = await execa(bin, ["-machine-readable", "version"], {
    cwd,
    env,
    extendEnv: false,
    stdin: "ignore",
    reject: false,
    timeout: 60_000,
  });
  if (result.failed && result.exitCode === undefined) {
    if (isEnoent(result.cause)) throw notFound(bin, result.cause);
    throw new JiraImagesError("PACKER_VERSION", `\`${bin} version\` failed: ${result.shortMessage}`);
  }
  const version = parseMachineReadable(String(result.stdout)).version;
  if (result.exitCode !== 0 || version === undefined) {
    throw new JiraImagesError(
      "PACKER_VERSION",
      `\`${bin} -machine-readable version\` exited ${result.exitCode} without a version line: ${String(result.stderr || result.stdout).slice(0, 500)}`,
    );
  }
  return version;
}

/** Compares dotted versions numerically (`1.10.0` > `1.9.4`); a pre-release suffix is ignored. */
export function versionAtLeast(version: string, minimum: string): boolean {
  const parse = (v: string) =>
    v
      .replace(/^v/, "")
      .split(/[-+]/)[0]!
      .split(".")
      .map((n) => Number.parseInt(n, 10) || 0);
  const a = parse(version);
  const b = parse(minimum);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/**
 * Whether `version` meets a HashiCorp version constraint (`>= 1.9.0, < 2.0.0`, `~> 1.9`): every
 * comma-separated clause must hold. A clause it cannot read is a PACKER_VERSION error.
 */
export function satisfiesConstraint(version: string, constraint: string): boolean {
  return constraint.split(",").every((clause) => {
    const match = /^\s*(=|!=|>=|<=|>|<|~>)?\s*v?(\d+(?:\.\d+)*)\s*$/.exec(clause);
    if (!match) throw new JiraImagesError("PACKER_VERSION", `cannot read the version constraint ${JSON.stringify(constraint)}`);
    const [, op = "=", wanted = ""] = match;
    const atLeast = versionAtLeast(version, wanted);
    const atMost = versionAtLeast(wanted, version);
    switch (op) {
      case "=":
        return atLeast && atMost;
      case "!=":
        return !(atLeast && atMost);
      case ">=":
        return atLeast;
      case "<=":
        return atMost;
      case ">":
        return !atMost;
      case "<":
        return !atLeast;
      default: {
        // ~> 1.9 allows 1.x from 1.9 on; ~> 1.9.2 allows 1.9.x from 1.9.2 on.
        const parts = wanted.split(".").map(Number);
        const ceiling = parts.length === 1 ? [parts[0]! + 1] : [...parts.slice(0, -2), parts[parts.length - 2]! + 1];
        return atLeast && !versionAtLeast(version, ceiling.join("."));
      }
    }
  });
}

const READ_BYTES = 1 << 20;
/**
 * How long the follower sleeps at the end of the file while Packer runs. Polling rather than
 * file-change events: Packer writes every line separately, and an event per line costs more than
 * the parsing; a wake-up every 100 ms batches them, and Packer's exit wakes the follower at once.
 */
const POLL_MS = 100;

/**
 * Follows a file that another process appends to, handing each new piece of text to `onText`,
 * until `done` settles and everything written before that has been read.
 */
export async function followFile(path: string, onText: (text: string) => void, done: Promise<unknown>): Promise<void> {
  const handle = await open(path, "r");
  const decoder = new StringDecoder("utf8");
  const buf = Buffer.allocUnsafe(READ_BYTES);
  let finished = false;
  let wake: (() => void) | undefined;
  const finish = () => {
    finished = true;
    wake?.();
  };
  // `done` rejecting is reported by whoever awaits it; here it only means "stop following".
  done.then(finish, finish);
  let position = 0;
  try {
    for (;;) {
      const finalRead = finished;
      const { bytesRead } = await handle.read(buf, 0, READ_BYTES, position);
      if (bytesRead > 0) {
        position += bytesRead;
        onText(decoder.write(buf.subarray(0, bytesRead)));
        continue;
      }
      if (finalRead) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
        if (finished) wake();
      });
      wake = undefined;
    }
    const rest = decoder.end();
    if (rest) onText(rest);
  } finally {
    await handle.close();
  }
}
