import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runPipeline, type DriverDeps } from "../src/driver/run.ts";
import { detectPulumiCli, isMissingCliError } from "../src/driver/pulumi-cli.ts";
import { localStackFactory } from "../src/driver/workspace.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** Only node's own folder: whatever is installed on this machine, `pulumi` is not on this PATH. */
const PATH_WITHOUT_PULUMI = dirname(process.execPath);

function pipeline(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/driver/cli.ts", ...args],
      { cwd: root, env: { PATH: PATH_WITHOUT_PULUMI, HOME: process.env.HOME ?? tmpdir(), PULUMI_CONFIG_PASSPHRASE: "test-only" } },
      (error, stdout, stderr) => resolvePromise({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function assertInstallMessage(stderr: string): void {
  assert.match(stderr, /^pulumi-cli-missing: the Pulumi CLI \(`pulumi`\) was not found on PATH/m);
  assert.match(stderr, /curl -fsSL https:\/\/get\.pulumi\.com \| sh/);
  assert.match(stderr, /`npm run pipeline -- plan --stack <s>` works without it/);
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
}

function deps(projectRoot: string, stderr: (text: string) => void): DriverDeps {
  return {
    root: projectRoot,
    env: { PULUMI_CONFIG_PASSPHRASE: "test-only" },
    io: { stdout: () => assert.fail("nothing on stdout"), stderr, stderrIsTTY: false },
    detectCli: detectPulumiCli,
    stackFactory: localStackFactory,
    signals: { on: () => undefined, off: () => undefined },
    now: Date.now,
    heartbeatMs: 60_000,
    interruptGraceMs: 2_000,
    plan: async () => 0,
  };
}

describe("driver without the Pulumi CLI (real, no stubs)", () => {
  it("`npm run pipeline -- up` fails at once with how to install the CLI: exit 3, no stack trace, nothing on stdout", async () => {
    const result = await pipeline(["up", "--stack", "dev"]);
    assert.equal(result.code, 3, `exit code (stderr: ${result.stderr})`);
    assertInstallMessage(result.stderr);
    assert.equal(result.stdout, "");
  });

  it("preview, destroy and outputs fail the same way (the real `pulumi version` check, in process)", async () => {
    const savedPath = process.env.PATH;
    try {
      process.env.PATH = PATH_WITHOUT_PULUMI;
      for (const command of [["preview"], ["destroy", "--yes"], ["outputs"]]) {
        let stderr = "";
        const code = await runPipeline([...command, "--stack", "dev"], {
          ...deps(root, (t) => void (stderr += t)),
          detectCli: detectPulumiCli,
          stackFactory: async () => assert.fail("no stack without a CLI"),
        });
        assert.equal(code, 3, command.join(" "));
        assertInstallMessage(stderr);
      }
    } finally {
      process.env.PATH = savedPath;
    }
  });

  it("the real LocalWorkspace fails with CommandError ENOENT, which the driver turns into the install message", async () => {
    const project = mkdtempSync(join(tmpdir(), "driver-ws-"));
    const savedPath = process.env.PATH;
    try {
      writeFileSync(join(project, "Pulumi.yaml"), "name: jira-images\nruntime: nodejs\n");
      writeFileSync(join(project, "Pulumi.dev.yaml"), "config: {}\n");
      // The Automation API spawns `pulumi` with this process's PATH.
      process.env.PATH = PATH_WITHOUT_PULUMI;
      await assert.rejects(
        localStackFactory({ stackName: "dev", root: project, create: true, envVars: {} }),
        (err) => isMissingCliError(err),
      );
      let stderr = "";
      const code = await runPipeline(["preview", "--stack", "dev"], {
        ...deps(project, (t) => void (stderr += t)),
        // Skip the up-front check so that the workspace layer itself meets the missing CLI.
        detectCli: async () => undefined,
        stackFactory: localStackFactory,
      });
      assert.equal(code, 3);
      assertInstallMessage(stderr);
    } finally {
      process.env.PATH = savedPath;
      rmSync(project, { recursive: true, force: true });
    }
  });
});
