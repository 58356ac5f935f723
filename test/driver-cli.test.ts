import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { runPipeline, type DriverDeps } from "../src/driver/run.ts";
import { detectPulumiCli, isMissingCliError } from "../src/driver/pulumi-cli.ts";
import { localStackFactory } from "../src/driver/workspace.ts";
import { runPromote } from "../src/driver/promote-command.ts";

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
    prune: async () => 0,
    promote: runPromote,
  };
}

describe("driver without the Pulumi CLI (real, no stubs)", () => {
  it("`npm run pipeline -- up` fails at once with how to install the CLI: exit 3, no stack trace, nothing on stdout", async () => {
    const result = await pipeline(["up", "--stack", "dev"]);
    assert.equal(result.code, 3, `exit code (stderr: ${result.stderr})`);
    assertInstallMessage(result.stderr);
    assert.equal(result.stdout, "");
  });

  it("preview, destroy, outputs and promote fail the same way (the real `pulumi version` check, in process)", async () => {
    const savedPath = process.env.PATH;
    try {
      process.env.PATH = PATH_WITHOUT_PULUMI;
      for (const command of [["preview", "--stack", "dev"], ["destroy", "--yes", "--stack", "dev"], ["outputs", "--stack", "dev"], ["promote", "--from", "dev", "--to", "prod"]]) {
        let stderr = "";
        const code = await runPipeline(command, {
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

/** Runs `argv` to completion; the exit code and both streams. */
function run(file: string, argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(file, argv, { cwd: root, env }, (error, stdout, stderr) =>
      resolvePromise({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("driver as a command-line tool (real CLI)", function () {
  this.timeout(60_000);
  const env = { PATH: PATH_WITHOUT_PULUMI, HOME: process.env.HOME ?? tmpdir(), PULUMI_CONFIG_PASSPHRASE: "test-only" };

  it("--help and -h print the usage on stdout and exit 0, with or without a command", async () => {
    const cases = [["--help"], ["-h"], ["up", "--help"], ["plan", "--stack", "dev", "-h"]];
    const results = await Promise.all(cases.map((argv) => pipeline(argv)));
    for (const [i, argv] of cases.entries()) {
      const result = results[i]!;
      assert.equal(result.code, 0, `${argv.join(" ")}: ${result.stderr}`);
      assert.match(result.stdout, /^usage: npm run pipeline -- <plan\|preview\|up\|destroy\|outputs[|a-z]*> --stack <dev\|prod>/);
      assert.match(result.stdout, /^ {7}npm run pipeline -- promote --from <stack> --to <stack> \[--stage <stage>\]$/m);
      assert.equal(result.stderr, "");
    }
  });

  it("an unknown stack gives the same exit code and message in every command, listing the stacks", async () => {
    const expected = `pipeline-stack-unknown: no stack "qa": Pulumi.qa.yaml does not exist in ${root} (stacks: dev, prod)\n`;
    const commands = [["plan", "--stack", "qa"], ["preview", "--stack", "qa"], ["up", "--stack", "qa"], ["destroy", "--yes", "--stack", "qa"], ["outputs", "--stack", "qa"], ["promote", "--from", "dev", "--to", "qa"]];
    const results = await Promise.all(commands.map((command) => pipeline(command)));
    for (const [i, command] of commands.entries()) {
      const result = results[i]!;
      assert.deepEqual([result.code, result.stderr, result.stdout], [2, expected, ""], command.join(" "));
    }
  });

  it("without the Pulumi CLI, stops before the Automation API is loaded (its start-up time is in `npm run bench`)", async () => {
    const record = join(mkdtempSync(join(tmpdir(), "driver-modules-")), "loaded.json");
    const result = await run(
      process.execPath,
      ["--require", join(root, "test/fixtures/record-loaded-modules.cjs"), "--import", "tsx", "src/driver/cli.ts", "up", "--stack", "dev"],
      { ...env, RECORD_LOADED_MODULES: record },
    );
    assert.equal(result.code, 3, result.stderr);
    assertInstallMessage(result.stderr);
    const loaded: string[] = JSON.parse(readFileSync(record, "utf8"));
    assert.ok(loaded.some((path) => path.includes("tsx")), "the recorder saw the process's CommonJS modules");
    assert.deepEqual(loaded.filter((path) => /[\\/]@pulumi[\\/]pulumi[\\/]/.test(path)), [], "no module of @pulumi/pulumi was loaded");
  });

  it("`npm run --silent pipeline -- outputs` (as the README shows it) writes parseable JSON on stdout", async () => {
    // A stand-in `pulumi` answering what the Automation API asks for `outputs`.
    const bin = mkdtempSync(join(tmpdir(), "fake-pulumi-"));
    const outputs = { amiIds: { base: "ami-0aaaaaaaaaaaaaaa1", jira: "ami-0bbbbbbbbbbbbbbb2", "custom-dev": "ami-0ccccccccccccccc3" } };
    writeFileSync(
      join(bin, "pulumi"),
      ["#!/bin/sh", 'case "$1 $2" in', '  "version "*) echo v3.248.0 ;;', `  "stack output") echo '${JSON.stringify(outputs)}' ;;`, "esac", ""].join("\n"),
      { mode: 0o755 },
    );
    try {
      const npmEnv = { ...env, PATH: `${bin}:${process.env.PATH}`, PULUMI_BACKEND_URL: `file://${bin}` };
      const silent = await run("npm", ["run", "--silent", "pipeline", "--", "outputs", "--stack", "dev"], npmEnv);
      assert.equal(silent.code, 0, silent.stderr);
      assert.deepEqual(JSON.parse(silent.stdout), outputs);
      // Why the README says --silent: npm's own banner goes to stdout.
      const loud = await run("npm", ["run", "pipeline", "--", "outputs", "--stack", "dev"], npmEnv);
      assert.throws(() => JSON.parse(loud.stdout), SyntaxError);
      assert.match(loud.stdout, /^\n> jira-images@[\d.]+ pipeline/);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
