/**
 * The runner's watchdog: a small process of its own (own process group, not an ancestor of Packer,
 * no pipes to anyone) that outlives the runner. When the runner disappears without having stopped
 * Packer — the Pulumi command provider SIGKILLs its direct child on cancel or timeout — it sends
 * Packer's process group the interrupt that the runner would have sent, waits for Packer's cleanup
 * (temporary instance, key pair, security group), redacts the log as the runner would have, and
 * exits with Packer. While the runner is alive it only watches.
 *
 *     node --import tsx src/runner/watchdog.ts <runner pid> <packer pid> <log file>
 */
import { appendFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { isAlive, signalGroup } from "./processes.ts";
import { redactFileInPlace } from "./redact.ts";

const POLL_MS = 200;

function note(logFile: string, message: string): void {
  appendFileSync(logFile, `stage-runner watchdog: ${message}\n`);
}

async function watch(runnerPid: number, packerPid: number, logFile: string): Promise<void> {
  let interrupted = false;
  while (isAlive(packerPid)) {
    if (!interrupted && !isAlive(runnerPid)) {
      interrupted = true;
      note(logFile, `runner (pid ${runnerPid}) is gone; interrupting Packer (process group ${packerPid}) and waiting for its cleanup`);
      signalGroup(packerPid, "SIGINT");
    }
    await sleep(POLL_MS);
  }
  if (!interrupted) return;
  // Whatever Packer started and left behind in its group must not keep running either.
  signalGroup(packerPid, "SIGTERM");
  note(logFile, "Packer has exited");
  await redactFileInPlace(logFile);
}

function main(argv: string[]): void {
  const [runner, packer, logFile] = argv;
  const runnerPid = Number(runner);
  const packerPid = Number(packer);
  if (!Number.isSafeInteger(runnerPid) || !Number.isSafeInteger(packerPid) || runnerPid <= 1 || packerPid <= 1 || !logFile) {
    process.stderr.write("usage: watchdog.ts <runner pid> <packer pid> <log file>\n");
    process.exit(2);
  }
  watch(runnerPid, packerPid, logFile).catch((error: unknown) => {
    // Nobody reads this process's stderr: the log is where a user looks.
    note(logFile, `failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}

main(process.argv.slice(2));
