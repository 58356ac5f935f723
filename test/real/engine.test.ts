import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { parse } from "yaml";
import { realTool, realToolsEnv } from "../helpers/real-tools.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { imagesStackOutputs } from "../fixtures/engine/images-outputs.ts";

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const fixtures = join(root, "test", "fixtures", "engine");

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; a non-zero exit is a result, not an exception. */
async function exec(file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(file, args, { cwd, env, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof failed.code !== "number") throw err;
    return { code: failed.code, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

/**
 * A project folder holding copies of a project's Pulumi.yaml, one stack file and the `main` file
 * that Pulumi.yaml names (the CLI checks that it exists; the inline program runs instead).
 */
function projectCopy(from: string, stack: string): string {
  const dir = tempDir("jira-images-engine-project-");
  const main = (parse(readFileSync(join(from, "Pulumi.yaml"), "utf8")) as { main?: string }).main;
  for (const file of ["Pulumi.yaml", `Pulumi.${stack}.yaml`, ...(main ? [main] : [])]) copyFileSync(join(from, file), join(dir, file));
  return dir;
}

describe("the real Pulumi engine: stack outputs, stack references, locks and destroy (file backend, passphrase secrets)", function () {
  // Each Pulumi CLI operation starts a process and the engine: seconds each on two cores.
  this.timeout(120_000);

  let env: NodeJS.ProcessEnv;
  let backendDir: string;
  let imagesProject: string;
  let appProject: string;

  before(function () {
    // A missing CLI fails here with the command that builds it, never skips.
    realTool("pulumi");
    backendDir = tempDir("jira-images-engine-state-");
    env = realToolsEnv({
      PULUMI_BACKEND_URL: `file://${backendDir}`,
      PULUMI_CONFIG_PASSPHRASE: "engine-test-only",
      PULUMI_HOME: tempDir("jira-images-engine-home-"),
      PULUMI_SKIP_UPDATE_CHECK: "true",
      // Nothing may be downloaded: a plugin the engine would fetch fails the test instead.
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    });
    imagesProject = projectCopy(root, "dev");
    appProject = projectCopy(join(root, "examples", "app-consumer"), "dev");
  });

  const inline = (program: "images" | "app", project: string, operation: "up" | "destroy") =>
    exec(process.execPath, ["--import", "tsx", join(fixtures, "inline-stack.ts"), program, project, "dev", operation], root, env);
  const driver = (...args: string[]) =>
    exec(process.execPath, ["--import", "tsx", join(fixtures, "driver.ts"), imagesProject, ...args], root, env);
  const pulumi = (cwd: string, ...args: string[]) => exec(realTool("pulumi"), [...args, "--non-interactive"], cwd, env);

  /** The resources in the stack's state, as `type::name`. */
  async function resourcesInState(project: string): Promise<string[]> {
    const exported = await pulumi(project, "stack", "export", "--stack", "dev");
    assert.equal(exported.code, 0, exported.stderr);
    const state = JSON.parse(exported.stdout) as { deployment: { resources?: { urn: string }[] } };
    return (state.deployment.resources ?? []).map(({ urn }) => urn.split("::").slice(2).join("::"));
  }

  it("runs the Pulumi CLI whose version matches @pulumi/pulumi in package.json", async function () {
    const wanted = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies["@pulumi/pulumi"];
    const version = await pulumi(root, "version");
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout.trim(), `v${wanted}`);
  });

  it("an up of the images stack records its outputs and its components in the file backend", async function () {
    const up = await inline("images", imagesProject, "up");
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(JSON.parse(up.stdout), imagesStackOutputs("dev"));
    assert.deepEqual((await resourcesInState(imagesProject)).sort(), [
      "jira-images:pipeline:ImagePipeline$jira-images:pipeline:ImageStage::base",
      "jira-images:pipeline:ImagePipeline$jira-images:pipeline:ImageStage::custom-dev",
      "jira-images:pipeline:ImagePipeline$jira-images:pipeline:ImageStage::jira",
      "jira-images:pipeline:ImagePipeline::images",
      "pulumi:pulumi:Stack::jira-images-dev",
    ]);
  });

  it("a consumer project reads amiIds and images through a StackReference on the same backend (organization/jira-images/<stack>)", async function () {
    const up = await inline("app", appProject, "up");
    assert.equal(up.code, 0, up.stderr);
    const images = imagesStackOutputs("dev");
    assert.deepEqual(JSON.parse(up.stdout), {
      // Pulumi.yaml's default (empty imagesStack) applied by the real engine, then the file backend's naming.
      imagesStack: "organization/jira-images/dev",
      amiId: images.images["custom-dev"]!.amis["eu-west-1"],
      lineage: ["base", "jira", "custom-dev"],
      parentAmi: images.amiIds.jira,
    });
    assert.ok((await resourcesInState(appProject)).includes("pulumi:pulumi:StackReference::organization/jira-images/dev"));
  });

  it("`npm run pipeline -- outputs` prints the stack outputs as JSON on stdout, nothing else", async function () {
    const outputs = await driver("outputs", "--stack", "dev");
    assert.equal(outputs.code, 0, outputs.stderr);
    assert.deepEqual(JSON.parse(outputs.stdout), imagesStackOutputs("dev"));
  });

  it("`npm run pipeline -- outputs` of a stack never created names the `up` that creates it, and creates nothing", async function () {
    copyFileSync(join(root, "Pulumi.prod.yaml"), join(imagesProject, "Pulumi.prod.yaml"));
    const missing = await driver("outputs", "--stack", "prod");
    assert.equal(missing.code, 1, missing.stderr);
    assert.equal(missing.stdout, "");
    assert.match(missing.stderr, /pipeline-stack-missing: stack "prod" does not exist in file:\/\/.* yet; `npm run pipeline -- up --stack prod` creates it/);
    const stacks = await pulumi(imagesProject, "stack", "ls", "--json");
    assert.equal(stacks.code, 0, stacks.stderr);
    assert.deepEqual((JSON.parse(stacks.stdout) as { name: string }[]).map(({ name }) => name), ["dev"]);
  });

  it("a stale lock is reported with the `pulumi cancel` hint, and that command releases it", async function () {
    const locks = join(backendDir, ".pulumi", "locks", "organization", "jira-images", "dev");
    mkdirSync(locks, { recursive: true });
    // What a crashed `pulumi up` leaves behind.
    writeFileSync(
      join(locks, "3f8e0a52-0b7c-4d2e-9a41-5c6d7e8f9a0b.json"),
      JSON.stringify({ pid: 4242, username: "ci", hostname: "build-host", timestamp: "2026-01-01T00:00:00Z" }),
    );
    // The next `up` refuses before running anything (the program is not even started).
    const locked = await driver("up", "--stack", "dev");
    assert.equal(locked.code, 1, locked.stderr);
    assert.match(locked.stderr, /pipeline-stack-locked: stack "dev" is locked by another update/);
    assert.match(locked.stderr, /`pulumi cancel --stack dev`/);
    assert.equal((await resourcesInState(imagesProject)).length, 5, "a locked stack must not be touched");

    const cancel = await pulumi(imagesProject, "cancel", "--stack", "dev", "--yes");
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.deepEqual(readdirSync(locks), []);
  });

  it("`npm run pipeline -- destroy --yes` removes every resource of the stack", async function () {
    const destroyed = await driver("destroy", "--yes", "--stack", "dev");
    assert.equal(destroyed.code, 0, destroyed.stderr);
    assert.match(destroyed.stderr, /pipeline: destroy of "dev" finished/);
    assert.deepEqual(await resourcesInState(imagesProject), []);

    const app = await inline("app", appProject, "destroy");
    assert.equal(app.code, 0, app.stderr);
    assert.deepEqual(await resourcesInState(appProject), []);
  });

  it("downloaded no plugin in any of these operations", function () {
    const plugins = join(env.PULUMI_HOME!, "plugins");
    assert.deepEqual(existsSync(plugins) ? readdirSync(plugins) : [], []);
  });
});
