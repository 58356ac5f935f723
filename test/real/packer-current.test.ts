/**
 * The stage folders on a current Packer with the real amazon plugin (scripts/test-tools/20-packer.sh):
 * Debian's Packer 1.6.6, which the other template tests run, has amazon-ebs built in and rejects
 * what it does not know (imds_support, metadata_options, deprecate_at); the plugin checks those.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { currentPacker, type CurrentPacker } from "../helpers/packer-current.ts";
import { tempDir } from "../helpers/temp-dir.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const PARENT_AMI = "ami-0123456789abcdef0";
const INPUTS_HASH = `sha256:${"ab".repeat(32)}`;

/** The variables the program passes to each stage (see the README), plus the builder's address. */
function stageVars(stage: "base" | "jira" | "custom"): string[] {
  const vars: Record<string, string> = {
    stage: stage === "custom" ? "custom-dev" : stage,
    inputs_hash: INPUTS_HASH,
    region: "eu-west-1",
    ami_regions: '["eu-central-1"]',
    build_instance_type: "t3.medium",
    ssh_username: "ec2-user",
    ssh_source_cidrs: '["203.0.113.7/32"]',
    manifest_path: "manifest.json",
  };
  if (stage === "base") Object.assign(vars, { source_ami: "", source_ami_owners: '["amazon"]', source_ami_name_filter: "al2023-ami-2023.*-x86_64" });
  else Object.assign(vars, { source_ami: PARENT_AMI, jira_version: "9.12.15" });
  return Object.entries(vars).flatMap(([key, value]) => ["-var", `${key}=${value}`]);
}

describe("stage templates on the current Packer with the amazon plugin", function () {
  this.timeout(60_000);
  let packer: CurrentPacker;
  const run = (args: string[], cwd = ROOT) => execa(packer.bin, args, { cwd, env: packer.env(), extendEnv: false, reject: false, all: true });

  before(function () {
    packer = currentPacker();
  });

  it("is Packer >= 1.11, and `packer init packer/` finds the amazon plugin installed, fetching nothing", async function () {
    const version = await run(["version"]);
    const match = /^Packer v(\d+)\.(\d+)\.\d+/.exec(version.stdout);
    assert.ok(match, version.all);
    assert.ok(Number(match[1]) > 1 || Number(match[2]) >= 11, `packer-current is ${match[0]}, the tests need >= 1.11`);

    // No route to GitHub here: an init that wanted to download would fail.
    const init = await run(["init", "packer"]);
    assert.equal(init.exitCode, 0, init.all);
    assert.doesNotMatch(init.all, /Installed plugin/);
    const installed = await run(["plugins", "installed"]);
    assert.match(installed.stdout, /github\.com\/hashicorp\/amazon\/packer-plugin-amazon_v1\.\d+\.\d+_/);
  });

  it("validates every stage folder with the program's variables, packer/custom with the dev and the prod var file", async function () {
    const envs = readdirSync(join(ROOT, "packer/custom")).filter((f) => f.endsWith(".pkrvars.hcl"));
    assert.deepEqual(envs.sort(), ["dev.pkrvars.hcl", "prod.pkrvars.hcl"]);
    const runs: Array<[string, string[]]> = [
      ["packer/base", stageVars("base")],
      ["packer/jira", stageVars("jira")],
      ...envs.map((file): [string, string[]] => ["packer/custom", [...stageVars("custom"), "-var-file", `packer/custom/${file}`]]),
    ];
    const results = await Promise.all(runs.map(([dir, vars]) => run(["validate", ...vars, dir])));
    results.forEach((result, i) => {
      assert.equal(result.exitCode, 0, `packer validate ${runs[i]![1].slice(-1)[0]} ${runs[i]![0]}:\n${result.all}`);
      assert.match(result.stdout, /The configuration is valid/);
    });
  });

  it("is `packer fmt -check -recursive` clean: the stage folders, the var files, and the emulator test's stage", async function () {
    for (const dir of ["packer", "test/fixtures/packer-moto"]) {
      const result = await run(["fmt", "-check", "-diff", "-recursive", dir]);
      assert.equal(result.exitCode, 0, `packer fmt -check -recursive ${dir}:\n${result.all}`);
    }
  });

  it("checks the amazon options 1.6.6 cannot read: a wrong imds_support or http_tokens fails validation", async function () {
    // Proves that the validations above ran the plugin's own checks of these fields.
    const dir = tempDir("packer-current-");
    mkdirSync(join(dir, "bad"));
    writeFileSync(
      join(dir, "bad", "bad.pkr.hcl"),
      `source "amazon-ebs" "bad" {
  region        = "eu-west-1"
  instance_type = "t3.micro"
  source_ami    = "${PARENT_AMI}"
  ssh_username  = "ec2-user"
  ami_name      = "bad"
  imds_support  = "v1.0"
  metadata_options {
    http_tokens = "sometimes"
  }
}

build {
  sources = ["source.amazon-ebs.bad"]
}
`,
    );
    const result = await run(["validate", "bad"], dir);
    assert.equal(result.exitCode, 1, result.all);
    assert.match(result.all, /imds_support/);
    assert.match(result.all, /http_tokens/);
  });
});
