/**
 * The stage folders on a current Packer with the real amazon plugin (scripts/test-tools/20-packer.sh):
 * Debian's Packer 1.6.6, which the other template tests run, has amazon-ebs built in and rejects
 * what it does not know (imds_support, metadata_options, deprecate_at); the plugin checks those.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { execa } from "execa";
import { currentPacker, type CurrentPacker } from "../helpers/packer-current.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { loadStackConfigFile } from "../../src/config.ts";
import type { StageDefinition, VarValue } from "../../src/stages.ts";
import { declareStages } from "../../stages/index.ts";
import { jiraInstaller } from "../../stages/jira.ts";
import { stageCheckNames } from "../../src/image-tests.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const PARENT_AMI = "ami-0123456789abcdef0";
const INPUTS_HASH = `sha256:${"ab".repeat(32)}`;
const STACKS = ["dev", "prod"] as const;

/**
 * `packer validate` of one stage with what the program passes it: its stack's variables and var
 * files, plus what the pipeline and the runner add (parent AMI, inputs hash, image tests, manifest path) and
 * the builder's address. The installer pin, normally read from packer/files/SHA256SUMS, is a
 * stand-in value here.
 */
function validateArgs(stage: StageDefinition): string[] {
  const vars: Record<string, VarValue> = {
    ...stage.vars,
    ...(stage.parent !== undefined ? { source_ami: PARENT_AMI } : {}),
    inputs_hash: INPUTS_HASH,
    image_test_suites: stage.tests ?? [],
    image_tests_count: String(stageCheckNames(stage.name, stage.tests ?? [], ROOT).length),
    manifest_path: "manifest.json",
    ssh_source_cidrs: ["203.0.113.7/32"],
  };
  return [
    "validate",
    ...Object.entries(vars).flatMap(([key, value]) => ["-var", `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`]),
    ...stage.varFiles.flatMap((file) => ["-var-file", file]),
    stage.template,
  ];
}

function stagesOf(stack: string): StageDefinition[] {
  const config = loadStackConfigFile(ROOT, stack);
  const pins = new Map([[basename(jiraInstaller(config.jiraVersion)), "cd".repeat(32)]]);
  return declareStages(config, pins);
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

  it("validates every stage of the dev and the prod stack with the program's own variables and var files", async function () {
    const runs = STACKS.flatMap((stack) => stagesOf(stack).map((stage) => ({ label: `${stack} ${stage.name} (${stage.template})`, args: validateArgs(stage) })));
    assert.deepEqual(
      runs.map((r) => r.label),
      STACKS.flatMap((stack) => [`${stack} base (packer/base)`, `${stack} jira (packer/jira)`, `${stack} custom-${stack} (packer/custom)`]),
    );
    assert.ok(runs.some((r) => r.args.includes(`packer/custom/dev.pkrvars.hcl`)) && runs.some((r) => r.args.includes(`packer/custom/prod.pkrvars.hcl`)));
    const results = await Promise.all(runs.map((r) => run(r.args)));
    results.forEach((result, i) => {
      assert.equal(result.exitCode, 0, `packer validate, ${runs[i]!.label}:\n${result.all}`);
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
