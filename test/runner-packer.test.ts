/**
 * The stage runner against the real Packer binary (Debian's 1.6.6 here) with a local-only
 * template (null builder + shell-local): the real stream parses, a build without an AMI is
 * reported as such, and a real interrupt (forwarded or from the watchdog) is cleaned up.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { parseMachineReadable } from "../src/machine-readable.ts";
import { selectStageImage } from "../src/runner/image.ts";
import { PREFIX_LINE, ROOT, providerCommand, runCli, startCli, survivors, tempDir, toCliRun, waitFor } from "./fixtures/fake-packer-harness.ts";

const TEMPLATE = join(ROOT, "test/fixtures/packer-local");

function logIn(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const name = readdirSync(dir).find((f) => f.endsWith(".log"));
  return name === undefined ? undefined : join(dir, name);
}

/** Packer's process group, found by the per-run path that only its command line holds. */
function packerGroup(logDir: string): number | undefined {
  return survivors({ text: logDir }).find((p) => p.cmdline.includes("packer build") || p.cmdline.startsWith("/usr/bin/packer build"))?.pgid;
}

describe("stage runner with the real Packer (local-only template)", function () {
  this.timeout(40_000);

  before(async () => {
    const found = await execa("packer", ["version"], { reject: false });
    if (found.exitCode !== 0) {
      throw new Error("packer is not installed (these tests need the real binary): apt-get install -y packer");
    }
  });

  it("parses the real stream and reports clearly that the build made no AMI", async () => {
    const logDir = join(tempDir(), "logs");
    const run = await runCli(["--stage", "local", "--template", TEMPLATE, "--log-dir", logDir, "--var", "greeting=hello, comma"], {
      env: { PACKER_BIN: "packer" },
    });
    assert.equal(run.exitCode, 1, run.stderr);
    assert.equal(run.stdout, "");
    for (const line of run.stderrLines) assert.match(line, PREFIX_LINE);
    assert.match(run.stderr, /NO_AMI: packer build exited 0 but none of its artifacts is an AMI/);
    assert.match(run.stderr, /artifact of null\.local: builder fnoeding\.null, id "Null"/);

    const log = logIn(logDir)!;
    const stream = parseMachineReadable(readFileSync(log, "utf8"));
    assert.equal(stream.otherLines, 0, "every line of real Packer output is a record");
    assert.deepEqual(
      stream.artifacts.map((a) => [a.target, a.builderId, a.id]),
      [
        ["null.local", "fnoeding.null", "Null"],
        ["null.local", "fnoeding.null", "Null"],
      ],
    );
    assert.equal(selectStageImage(stream).kind, "none");
    assert.ok(stream.uiTail.some((u) => u.text === "    null.local: hello, comma"), "the escaped comma decodes");
    // The runner passed its per-run manifest_path: the manifest sits next to the log.
    const manifest = JSON.parse(readFileSync(log.replace(/\.log$/, ".manifest.json"), "utf8"));
    assert.equal(manifest.builds[0].packer_run_uuid, manifest.last_run_uuid);
  });

  it("forwards SIGTERM as an interrupt; Packer cancels cleanly and nothing of its process group survives", async () => {
    const logDir = join(tempDir(), "logs");
    const child = startCli(["--stage", "local", "--template", TEMPLATE, "--log-dir", logDir, "--var", "sleep_seconds=60"], {
      env: { PACKER_BIN: "packer" },
    });
    await waitFor("the provisioner to start sleeping", () => {
      const log = logIn(logDir);
      return log !== undefined && readFileSync(log, "utf8").includes("ready to sleep");
    });
    const pgid = packerGroup(logDir);
    assert.ok(pgid, "Packer runs in its own process group");
    child.kill("SIGTERM");
    const run = toCliRun(await child);
    assert.equal(run.exitCode, 143, run.stderr);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /INTERRUPTED: received SIGTERM; Packer cleaned up and reported its builds cancelled/);
    assert.match(readFileSync(logIn(logDir)!, "utf8"), /Cleanly cancelled builds after being interrupted\./);
    await waitFor("Packer's process group to be empty", () => survivors({ pgid }).length === 0, 5_000);
  });

  it("when the runner is SIGKILLed, the watchdog interrupts the real Packer, which cancels cleanly; nothing survives", async () => {
    const logDir = join(tempDir(), "logs");
    const command = providerCommand(["--stage", "local", "--template", TEMPLATE, "--log-dir", logDir, "--var", "sleep_seconds=60"]);
    const child = execa("/bin/sh", ["-c", command], { cwd: ROOT, env: { PACKER_BIN: "packer" }, reject: false });
    await waitFor("the provisioner to start sleeping", () => {
      const log = logIn(logDir);
      return log !== undefined && readFileSync(log, "utf8").includes("ready to sleep");
    });
    const pgid = packerGroup(logDir);
    assert.ok(pgid);
    await waitFor("the watchdog", () => survivors({ text: "watchdog.sh" }).some((p) => p.cmdline.includes(logDir)));
    child.kill("SIGKILL");
    assert.equal((await child).signal, "SIGKILL");
    await waitFor("Packer's clean cancel", () => readFileSync(logIn(logDir)!, "utf8").includes("Cleanly cancelled builds after being interrupted."));
    await waitFor("Packer's group and the watchdog to exit", () => survivors({ pgid, text: logDir }).length === 0, 5_000);
    assert.match(readFileSync(logIn(logDir)!, "utf8"), /stage-runner watchdog: Packer has exited/);
  });
});
