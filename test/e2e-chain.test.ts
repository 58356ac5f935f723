import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { loadStackConfigFile } from "../src/config.ts";
import { INSTALLER_CHECKSUMS } from "../src/installer-checksums.ts";
import { StageResultSchema, parseStageStdout } from "../src/runner/result.ts";
import { jiraInstaller } from "../stages/jira.ts";
import { copyPackerFolder } from "./helpers/packer-copy.ts";
import { PROJECT_ROOT, commandOf, runProgram, type ProgramRun } from "./helpers/pulumi-mocks.ts";

const FAKE_PACKER = join(PROJECT_ROOT, "test", "fixtures", "fake-packer");

/**
 * A project checkout in a temporary folder: this repository's code (symlinked) and Packer
 * workspace (copied), plus a stand-in installer and its pin, so the runner's preflight passes and its logs
 * stay out of the repository.
 */
function makeCheckout(): string {
  const root = mkdtempSync(join(tmpdir(), "e2e-chain-"));
  for (const entry of ["src", "stages", "node_modules", "package.json", "tsconfig.json"]) {
    symlinkSync(join(PROJECT_ROOT, entry), join(root, entry));
  }
  copyPackerFolder(PROJECT_ROOT, root);
  const installer = "stand-in Jira installer, not an LFS pointer\n";
  writeFileSync(join(root, jiraInstaller("9.12.15")), installer);
  const pin = createHash("sha256").update(installer).digest("hex");
  writeFileSync(join(root, INSTALLER_CHECKSUMS), `${pin}  ${basename(jiraInstaller("9.12.15"))}\n`);
  return root;
}

interface Execution {
  stage: string;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a create command the way @pulumi/command's local provider does: `/bin/sh -c <create>` in `dir`. */
function runAsProvider(create: string, dir: string, env: NodeJS.ProcessEnv): Promise<Omit<Execution, "stage">> {
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", create], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("end to end: the program's own commands through the real runner and the stand-in packer", function () {
  // Three runner processes (node + tsx each), run one after the other like the real chain.
  this.timeout(90_000);

  let root: string;
  let record: string;
  let run: ProgramRun;
  const executions: Execution[] = [];
  const config = loadStackConfigFile(PROJECT_ROOT, "prod");

  before(async () => {
    assert.ok(existsSync(FAKE_PACKER), `the stand-in packer ${FAKE_PACKER} is missing`);
    root = makeCheckout();
    record = join(root, "fake-packer.jsonl");
    const env = { ...process.env, PACKER_BIN: FAKE_PACKER, FAKE_PACKER_RECORD: record, PKR_VAR_ssh_source_cidrs: '["192.0.2.10/32"]' };
    run = await runProgram({
      stack: "prod",
      projectRoot: root,
      stdout: async (stage, create, dir) => {
        const result = await runAsProvider(create, dir, env);
        executions.push({ stage, ...result });
        if (result.code !== 0) throw new Error(`stage ${stage}: runner exited ${result.code}:\n${result.stderr}`);
        return result.stdout;
      },
    });
  });

  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("builds the whole chain in order, each runner exiting 0 with one result line", () => {
    assert.equal(run.error, undefined, String(run.error));
    assert.deepEqual(executions.map((e) => [e.stage, e.code]), [["base", 0], ["jira", 0], ["custom-prod", 0]]);
    for (const e of executions) {
      const lines = e.stdout.trim().split("\n");
      assert.equal(lines.length, 1, e.stdout);
      assert.equal(StageResultSchema.parse(JSON.parse(lines[0]!)).stage, e.stage);
    }
    // Each build ran its image tests (the stand-in prints their result line); the images entries record them.
    const images = run.outputs.images!.value as Record<string, { tests?: unknown }>;
    assert.deepEqual(
      Object.fromEntries(Object.entries(images).map(([stage, image]) => [stage, image.tests])),
      { base: { passed: true, count: 4 }, jira: { passed: true, count: 18 }, "custom-prod": { passed: true, count: 21 } },
    );
  });

  it("hands each parent's AMI (build region) to its child's `packer build` arguments", () => {
    const builds = readFileSync(record, "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { event: string; argv: string[] })
      .filter((e) => e.event === "start" && e.argv.includes("build"));
    assert.equal(builds.length, 3);
    const amiIds = run.outputs.amiIds!.value as Record<string, string>;
    const results = Object.fromEntries(executions.map((e) => [e.stage, StageResultSchema.parse(JSON.parse(e.stdout))]));
    for (const [i, [child, parent]] of [[1, ["jira", "base"]], [2, ["custom-prod", "jira"]]] as const) {
      const argv = builds[i]!.argv;
      assert.ok(argv.includes(`stage=${child}`), argv.join(" "));
      assert.ok(argv.includes(`source_ami=${amiIds[parent]}`), `${child}'s packer build gets ${parent}'s AMI: ${argv.join(" ")}`);
      assert.equal(amiIds[parent], results[parent]!.amis[config.region]);
    }
    assert.ok(builds[0]!.argv.includes("source_ami="), "base builds from the OS image filter");
    assert.ok(builds[2]!.argv.some((a) => a.endsWith("packer/custom/prod.pkrvars.hcl")), "custom gets its var file");
    // manifest_path is declared in packer/common, which each stage folder loads through a symlink.
    for (const build of builds) {
      assert.ok(build.argv.some((a) => a.startsWith("manifest_path=")), `the runner passes its manifest path: ${build.argv.join(" ")}`);
    }
  });

  it("exports the AMIs the runner reported and launches the instances from the custom image", () => {
    const amiIds = run.outputs.amiIds!.value as Record<string, string>;
    assert.deepEqual(Object.keys(amiIds), ["base", "jira", "custom-prod"]);
    for (const ami of Object.values(amiIds)) assert.match(ami, /^ami-[0-9a-f]{8,17}$/);
    assert.equal(new Set(Object.values(amiIds)).size, 3);
    const instances = run.outputs.instances!.value as Array<{ ami: string }>;
    assert.deepEqual(instances.map((i) => i.ami), [amiIds["custom-prod"], amiIds["custom-prod"]]);
    assert.match(commandOf(run, "jira").inputs.create, new RegExp(`--var source_ami=${amiIds.base}`));
  });

  it("an update (an input outside the triggers changed) re-emits the previous result and builds nothing", async () => {
    const jira = commandOf(run, "jira").inputs;
    const previous = executions.find((e) => e.stage === "jira")!.stdout.replace(/\n$/, "");
    const buildsBefore = readFileSync(record, "utf8");
    // As the provider runs an update: /bin/sh -c <update> in the project root, previous stdout (newline trimmed) in the environment.
    assert.equal(jira.dir, undefined);
    const update = await runAsProvider(jira.update, root, { ...process.env, PACKER_BIN: FAKE_PACKER, FAKE_PACKER_RECORD: record, PULUMI_COMMAND_STDOUT: previous });
    assert.equal(update.code, 0, update.stderr);
    assert.deepEqual(parseStageStdout("jira", update.stdout), parseStageStdout("jira", previous));
    assert.equal(readFileSync(record, "utf8"), buildsBefore, "no packer process ran");
  });

  it("writes the Packer logs under the checkout, not to stdout", () => {
    for (const e of executions) {
      const { logFile } = StageResultSchema.parse(JSON.parse(e.stdout));
      const abs = logFile.startsWith("/") ? logFile : join(root, logFile);
      assert.ok(abs.startsWith(join(root, ".packer-logs", e.stage)), logFile);
      assert.match(readFileSync(abs, "utf8"), /,artifact,0,id,/);
    }
  });
});
