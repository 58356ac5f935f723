import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { realTool } from "../helpers/real-tools.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The pull-request workflow's step that copies a stack's state into the preview's scratch backend. */
function copyStepScript(): string {
  const workflow = parse(readFileSync(join(root, ".github", "workflows", "pull-request.yml"), "utf8")) as {
    jobs: Record<string, { steps: Array<{ name?: string; run?: string }> }>;
  };
  return workflow.jobs["preview"]!.steps.find((step) => step.name?.startsWith("copy the stack's state"))!.run!;
}

describe("the preview's state copy with the real Pulumi CLI (file backends)", function () {
  this.timeout(60_000);
  const pulumiOutputs = { amiIds: { base: "ami-0aaaaaaaaaaaaaaa1" } };
  let pulumi: string;
  before(() => {
    pulumi = realTool("pulumi");
  });

  /** A "real" backend holding stack dev (deploy passphrase), and the copy step run against it. */
  function copyWithRealCli(outputs: object) {
    const dir = mkdtempSync(join(tmpdir(), "preview-copy-real-"));
    writeFileSync(join(dir, "Pulumi.yaml"), readFileSync(join(root, "Pulumi.yaml")));
    copyFileSync(join(root, "Pulumi.dev.yaml"), join(dir, "Pulumi.dev.yaml"));
    const base = { PATH: `${dirname(pulumi)}:${process.env.PATH}`, HOME: dir, PULUMI_HOME: join(dir, ".pulumi-home"), PULUMI_SKIP_UPDATE_CHECK: "1" };
    const real = `file://${dir}/real`;
    mkdirSync(join(dir, "real"));
    const deploy = { ...base, PULUMI_BACKEND_URL: real, PULUMI_CONFIG_PASSPHRASE: "the deploy passphrase" };
    const cli = (args: string[], env: NodeJS.ProcessEnv) => {
      const result = spawnSync(pulumi, args, { cwd: dir, env, encoding: "utf8" });
      assert.equal(result.status, 0, `pulumi ${args.join(" ")}: ${result.stderr}`);
      return result.stdout;
    };
    cli(["stack", "init", "dev"], deploy);
    cli(["stack", "export", "--stack", "dev", "--file", join(dir, "empty.json")], deploy);
    const state = JSON.parse(readFileSync(join(dir, "empty.json"), "utf8"));
    state.deployment.resources = [{ urn: "urn:pulumi:dev::jira-images::pulumi:pulumi:Stack::jira-images-dev", custom: false, type: "pulumi:pulumi:Stack", outputs }];
    writeFileSync(join(dir, "state.json"), JSON.stringify(state));
    cli(["stack", "import", "--stack", "dev", "--file", join(dir, "state.json")], deploy);

    const script = copyStepScript();
    const env = { ...base, STACK: "dev", RUNNER_TEMP: dir, GITHUB_ENV: join(dir, "github-env"), PULUMI_BACKEND_URL: real, SCRATCH_BACKEND: `file://${dir}/scratch` };
    const result = spawnSync("bash", ["--norc", "--noprofile", "-e", "-c", script], { cwd: dir, env, encoding: "utf8" });
    return { dir, base, result, cli };
  }

  it("copies the state without the deploy passphrase; the copy opens with the throwaway one", () => {
    const { dir, base, result, cli } = copyWithRealCli(pulumiOutputs);
    assert.equal(result.status, 0, result.stderr + result.stdout);
    const passphrase = /^PULUMI_CONFIG_PASSPHRASE=(.+)$/m.exec(readFileSync(join(dir, "github-env"), "utf8"))![1]!;
    const scratch = { ...base, PULUMI_BACKEND_URL: `file://${dir}/scratch`, PULUMI_CONFIG_PASSPHRASE: passphrase };
    assert.deepEqual(JSON.parse(cli(["stack", "output", "--stack", "dev", "--json"], scratch)), pulumiOutputs);
    // The offline plan reads the copy's checkpoint where the workflow points it.
    assert.ok(existsSync(join(dir, "scratch", ".pulumi", "stacks", "jira-images", "dev.json")));
  });

  it("refuses a state with secret values instead of asking for the deploy passphrase", () => {
    const secret = { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", plaintext: JSON.stringify("a secret") };
    const { result } = copyWithRealCli({ password: secret });
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stdout, /::error::stack dev's state holds secret values/);
  });
});
