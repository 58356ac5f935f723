import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { parse as parseHcl } from "@cdktf/hcl2json";
import { builderCidrsProblems, parseBuilderCidrs } from "../src/build-access.ts";
import { copyPackerFolder } from "./helpers/packer-copy.ts";
import { stageCheckNames } from "../src/image-tests.ts";
import { HOST_KEY_FILES, prepareImageRoot } from "./helpers/image-root.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const packerDir = join(root, "packer");
const STAGE_DIRS = ["base", "jira", "custom"] as const;
const PARENT_AMI = "ami-0123456789abcdef0";
const INPUTS_HASH = `sha256:${"ab".repeat(32)}`;
const BUILDER_CIDRS = '["203.0.113.7/32"]';
const INSTALLER_SHA256 = "cd".repeat(32);
const RUN_ID = "20261204T190804Z-1a2b3c4d";

function requireTool(command: string, aptPackage: string): void {
  const probe = spawnSync("sh", ["-c", `command -v ${command}`]);
  if (probe.status !== 0) {
    throw new Error(`${command} is not installed: apt-get install -y ${aptPackage}`);
  }
}

/** Packer without AWS credentials or network: proves that validation needs neither. */
function packerEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("AWS_") && !key.startsWith("PKR_VAR_")) env[key] = value;
  }
  return { ...env, CHECKPOINT_DISABLE: "1", PACKER_LOG: "", ...extra };
}

async function packer(args: string[], extraEnv: Record<string, string> = {}) {
  return execa("packer", args, { cwd: root, reject: false, env: packerEnv(extraEnv), extendEnv: false });
}

function varArgs(vars: Record<string, string>): string[] {
  return Object.entries(vars).flatMap(([key, value]) => ["-var", `${key}=${value}`]);
}

/** The image test suites of each stage (stages/*.ts). */
function testSuites(stage: string): string[] {
  return stage === "base" ? ["base"] : stage === "jira" ? ["base", "jira"] : ["base", "jira", "custom"];
}

/** Exactly the contract variables the program passes to each stage (see the README). */
function contractVars(stage: string, manifestPath: string): Record<string, string> {
  const common = {
    image_test_suites: JSON.stringify(testSuites(stage)),
    image_tests_count: String(stageCheckNames(stage, testSuites(stage), root).length),
    stage,
    stack: "prod",
    inputs_hash: INPUTS_HASH,
    region: "eu-west-1",
    ami_regions: '["eu-central-1"]',
    build_instance_type: "t3.medium",
    ssh_username: "ec2-user",
    manifest_path: manifestPath,
    kms_key_id: "",
    region_kms_key_ids: "{}",
  };
  if (stage === "base") {
    return {
      ...common,
      source_ami: "",
      source_ami_owners: '["amazon"]',
      source_ami_name_filter: "al2023-ami-2023.*-x86_64",
    };
  }
  if (stage === "jira") return { ...common, source_ami: PARENT_AMI, jira_version: "9.12.15", jira_installer_sha256: INSTALLER_SHA256 };
  const env = stage.replace(/^custom-/, "");
  return { ...common, source_ami: PARENT_AMI, jira_version: "9.12.15", environment: env, chef_node: env };
}

async function environments(): Promise<string[]> {
  const files = await readdir(join(packerDir, "custom"));
  return files.filter((f) => f.endsWith(".pkrvars.hcl")).map((f) => f.replace(/\.pkrvars\.hcl$/, "")).sort();
}

async function stageText(stageDir: string): Promise<string> {
  const dir = join(packerDir, stageDir);
  const files = (await readdir(dir)).filter((f) => f.endsWith(".pkr.hcl")).sort();
  const texts = await Promise.all(files.map((f) => readFile(join(dir, f), "utf8")));
  return texts.join("\n");
}

/**
 * The settings of packer/common/source.pkr.hcl that only the amazon plugin knows (Packer ≥ 1.10
 * with `packer init`): Packer 1.6.6's built-in amazon-ebs rejects them. Each pattern matches the
 * setting exactly as written there.
 */
const PLUGIN_ONLY: readonly { key: string; pattern: RegExp }[] = [
  { key: "imds_support", pattern: /^ *imds_support *= *"v2\.0"\n/gm },
  { key: "metadata_options", pattern: /^ *metadata_options *\{\n(?: *[a-z_]+ *= *[^\n{}]+\n)+ *\}\n/gm },
];

type HclJson = Record<string, any>; // hcl2json's output: free-form JSON, read key by key.

async function hcl(path: string, text?: string): Promise<HclJson> {
  return (await parseHcl(path, text ?? (await readFile(path, "utf8")))) as HclJson;
}

/** The amazon-ebs source every stage builds with, as HashiCorp's HCL parser reads it. */
function ebsSource(parsed: HclJson): HclJson {
  const blocks = parsed["source"]?.["amazon-ebs"]?.["stage"];
  assert.ok(Array.isArray(blocks) && blocks.length === 1, "packer/common/source.pkr.hcl declares source \"amazon-ebs\" \"stage\" once");
  return blocks[0] as HclJson;
}

/**
 * packer/common/source.pkr.hcl as Packer 1.6.6 can load it: the plugin-only settings removed, and
 * proven to be the only difference by comparing both parse trees.
 */
async function legacySource(text: string): Promise<string> {
  let legacy = text;
  for (const { key, pattern } of PLUGIN_ONLY) {
    const found = legacy.match(pattern) ?? [];
    assert.equal(found.length, 1, `packer/common/source.pkr.hcl sets ${key} once, as ${pattern}`);
    legacy = legacy.replace(pattern, "");
  }
  const full = ebsSource(await hcl("source.pkr.hcl", text));
  const stripped = ebsSource(await hcl("source.pkr.hcl", legacy));
  for (const { key } of PLUGIN_ONLY) delete full[key];
  assert.deepEqual(stripped, full, "removing the plugin-only settings changed something else");
  return legacy;
}

/** `packer inspect` prints maps as `"key" = "value"` lines inside a quoted, escaped string. */
function inspectLocal(output: string, name: string): string {
  const line = output.split("\n").find((l) => l.startsWith(`local.${name}: `));
  assert.ok(line, `packer inspect shows no local.${name}`);
  return JSON.parse(line.slice(`local.${name}: `.length)) as string;
}

function mapEntries(rendered: string): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const match of rendered.matchAll(/^\s*"([^"]+)" = "([^"]*)"$/gm)) entries[match[1]!] = match[2]!;
  return entries;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : Promise.resolve([join(dir, e.name)]))),
  );
  return nested.flat();
}

describe("packer templates (real Packer 1.6.6)", function () {
  let scratch: string;
  /** A copy of packer/ whose shared source Packer 1.6.6 can load (see legacySource). */
  let legacy: string;

  before(async function () {
    requireTool("packer", "packer");
    scratch = await mkdtemp(join(tmpdir(), "packer-templates-"));
    legacy = join(scratch, "legacy");
    copyPackerFolder(root, legacy);
    const source = join(legacy, "packer", "common", "source.pkr.hcl");
    await writeFile(source, await legacySource(await readFile(source, "utf8")));
  });

  /** A stage folder (or var file) of the Packer 1.6.6 copy. */
  const legacyPath = (path: string) => join(legacy, path);

  after(async function () {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it("keeps the plugin requirement alone in packer/, pinned to versions that know every setting used", async function () {
    const top = (await readdir(packerDir)).filter((f) => f.endsWith(".pkr.hcl") || f.endsWith(".pkr.json"));
    assert.deepEqual(top, ["plugins.pkr.hcl"]);
    const { packer: blocks } = await hcl(join(packerDir, "plugins.pkr.hcl"));
    const [block] = blocks as HclJson[];
    // Packer 1.10 stopped bundling the amazon plugin: amazon-ebs is always the one `packer init` installs.
    assert.equal(block!["required_version"], ">= 1.10.0");
    const amazon = (block!["required_plugins"] as HclJson[])[0]!["amazon"];
    assert.equal(amazon.source, "github.com/hashicorp/amazon");
    // imds_support on amazon-ebs arrived in plugin 1.2.2; the range starts above it, below 2.0.
    const range = /^>= (\d+)\.(\d+)\.(\d+), < 2\.0\.0$/.exec(amazon.version);
    assert.ok(range, `amazon plugin version ${amazon.version}`);
    const [major, minor, patch] = range.slice(1).map(Number) as [number, number, number];
    assert.ok(major === 1 && (minor > 2 || (minor === 2 && patch >= 2)), `amazon plugin minimum ${amazon.version} lacks imds_support`);
    // What Packer 1.6.6 rejects stays out of the stage folders, but for the plugin-only settings of
    // the shared source, which the 1.6.6 checks here strip (see legacySource).
    for (const stage of STAGE_DIRS) {
      const text = await stageText(stage);
      for (const forbidden of [/required_plugins/, /^\s*data\s+"/m, /deprecate_at/]) {
        assert.doesNotMatch(text, forbidden, `packer/${stage} must not use ${forbidden}`);
      }
    }
    const own = await Promise.all(
      STAGE_DIRS.map(async (stage) => {
        const dir = join(packerDir, stage);
        const files = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile() && e.name.endsWith(".pkr.hcl"));
        return Promise.all(files.map((e) => readFile(join(dir, e.name), "utf8")));
      }),
    );
    for (const text of [...own.flat(), await readFile(join(packerDir, "common", "variables.pkr.hcl"), "utf8")]) {
      assert.doesNotMatch(text, /imds_support|metadata_options/, "plugin-only settings belong in packer/common/source.pkr.hcl alone");
    }
  });

  it("requires IMDSv2 on the build instance and on every launch from the image", async function () {
    const source = ebsSource(await hcl(join(packerDir, "common", "source.pkr.hcl")));
    assert.equal(source["imds_support"], "v2.0");
    assert.deepEqual(source["metadata_options"], [{ http_endpoint: "enabled", http_tokens: "required", http_put_response_hop_limit: 1 }]);
  });

  it("encrypts the launch volume and the image with the stack's KMS key (aws/ebs when unset)", async function () {
    const source = ebsSource(await hcl(join(packerDir, "common", "source.pkr.hcl")));
    assert.equal(source["encrypt_boot"], true);
    assert.equal(source["kms_key_id"], "${var.kms_key_id}");
    assert.equal(source["region_kms_key_ids"], "${var.region_kms_key_ids}");
    const volumes = source["launch_block_device_mappings"] as HclJson[];
    assert.ok(volumes.length > 0, "no launch_block_device_mappings");
    for (const volume of volumes) {
      assert.equal(volume["encrypted"], true, `${volume["device_name"]} is launched unencrypted`);
      assert.equal(volume["kms_key_id"], "${var.kms_key_id}", `${volume["device_name"]} ignores kms_key_id`);
      assert.equal(volume["delete_on_termination"], true, `${volume["device_name"]} outlives the build`);
    }
    const { variable } = await hcl(join(packerDir, "common", "variables.pkr.hcl"));
    assert.equal(variable["kms_key_id"][0].default, "");
    assert.equal(variable["region_kms_key_ids"][0].type, "${map(string)}");
  });

  it("hands the KMS keys to amazon-ebs (Packer checks them), copy regions included", async function () {
    const keyed = {
      ...contractVars("jira", join(scratch, "kms.json")),
      kms_key_id: "alias/jira-images",
      region_kms_key_ids: '{"eu-central-1":"alias/jira-images"}',
    };
    const env = { PKR_VAR_ssh_source_cidrs: BUILDER_CIDRS };
    const ok = await packer(["validate", ...varArgs(keyed), legacyPath("packer/jira")], env);
    assert.equal(ok.exitCode, 0, ok.stdout + ok.stderr);
    const badKey = await packer(["validate", ...varArgs({ ...keyed, kms_key_id: "jira images key" }), legacyPath("packer/jira")], env);
    assert.notEqual(badKey.exitCode, 0);
    assert.match(badKey.stdout + badKey.stderr, /"jira images key" is not a valid KMS Key Id/);
    const stray = await packer(
      ["validate", ...varArgs({ ...keyed, region_kms_key_ids: '{"us-east-1":"alias/jira-images"}' }), legacyPath("packer/jira")],
      env,
    );
    assert.notEqual(stray.exitCode, 0);
    assert.match(stray.stdout + stray.stderr, /us-east-1 is in region_kms_key_ids but not in ami_regions/);
  });

  it("loads the shared files of packer/common into each stage folder through relative symlinks", async function () {
    const links: Record<(typeof STAGE_DIRS)[number], string[]> = {
      base: ["common-image-tests.pkr.hcl", "common-source.pkr.hcl", "common-variables.pkr.hcl"],
      jira: ["common-chef-stage.pkr.hcl", "common-image-tests.pkr.hcl", "common-source.pkr.hcl", "common-variables.pkr.hcl"],
      custom: ["common-chef-stage.pkr.hcl", "common-image-tests.pkr.hcl", "common-source.pkr.hcl", "common-variables.pkr.hcl"],
    };
    for (const stage of STAGE_DIRS) {
      const entries = await readdir(join(packerDir, stage), { withFileTypes: true });
      assert.deepEqual(entries.filter((e) => e.isSymbolicLink()).map((e) => e.name).sort(), links[stage], `packer/${stage}`);
      for (const link of links[stage]) {
        const target = await readlink(join(packerDir, stage, link));
        assert.equal(target, `../common/${link.replace(/^common-/, "")}`, `packer/${stage}/${link}`);
        assert.ok((await stat(join(packerDir, stage, link))).isFile(), `packer/${stage}/${link} is dangling`);
      }
    }
  });

  it("is `packer fmt -check` clean in every folder, var files included", async function () {
    const dirs = ["packer", "packer/common", ...STAGE_DIRS.map((s) => `packer/${s}`), "test/fixtures/packer-smoke"];
    const results = await Promise.all(dirs.map((dir) => packer(["fmt", "-check", "-diff", dir])));
    results.forEach((result, i) => {
      assert.equal(result.exitCode, 0, `packer fmt -check ${dirs[i]}:\n${result.stdout}${result.stderr}`);
    });
  });

  for (const stage of ["base", "jira"]) {
    it(`validates packer/${stage} with the program's variables, offline and without AWS credentials`, async function () {
      const vars = contractVars(stage, join(scratch, `${stage}.json`));
      const result = await packer(["validate", ...varArgs(vars), legacyPath(`packer/${stage}`)], {
        PKR_VAR_ssh_source_cidrs: BUILDER_CIDRS,
      });
      assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    });
  }

  it("validates packer/base with a pinned source_ami instead of the filter", async function () {
    const vars = { ...contractVars("base", join(scratch, "base-pinned.json")), source_ami: PARENT_AMI };
    const result = await packer(["validate", ...varArgs(vars), legacyPath("packer/base")], { PKR_VAR_ssh_source_cidrs: BUILDER_CIDRS });
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
  });

  it("has a var file for dev and prod, and validates packer/custom with each", async function () {
    const envs = await environments();
    assert.ok(envs.includes("dev") && envs.includes("prod"), `var files found: ${envs.join(", ")}`);
    const results = await Promise.all(
      envs.map((env) => {
        const vars = contractVars(`custom-${env}`, join(scratch, `custom-${env}.json`));
        return packer(
          ["validate", ...varArgs(vars), "-var-file", `packer/custom/${env}.pkrvars.hcl`, legacyPath("packer/custom")],
          { PKR_VAR_ssh_source_cidrs: BUILDER_CIDRS },
        );
      }),
    );
    results.forEach((result, i) => assert.equal(result.exitCode, 0, `custom-${envs[i]}: ${result.stdout}${result.stderr}`));
  });

  it("refuses to build without the builder's address, or open to the whole internet", async function () {
    const vars = contractVars("jira", join(scratch, "jira-open.json"));
    const unset = await packer(["validate", ...varArgs(vars), legacyPath("packer/jira")]);
    assert.notEqual(unset.exitCode, 0);
    assert.match(unset.stdout + unset.stderr, /ssh_source_cidrs/);
    for (const wide of ['["0.0.0.0/0"]', '["0.0.0.0/1", "128.0.0.0/1"]', '["::/0"]']) {
      const open = await packer(["validate", ...varArgs(vars), legacyPath("packer/jira")], { PKR_VAR_ssh_source_cidrs: wide });
      assert.notEqual(open.exitCode, 0, `${wide} validated`);
      assert.match(open.stdout + open.stderr, /each entry may be at most\s+an\s+IPv4\s+\/24\s+or\s+an\s+IPv6\s+\/64/);
    }
  });

  it("accepts and refuses the same builder CIDRs as the program's and the runner's rule (src/build-access.ts)", async function () {
    const vars = contractVars("base", join(scratch, "base-cidrs.json"));
    const cases = [
      '["203.0.113.7/32"]',
      '["198.51.100.0/24", "2001:db8::1/128"]',
      '["2001:db8:1:2::/64"]',
      '["10.0.0.0/23"]',
      '["2001:db8::/63"]',
      '["0.0.0.0/1", "128.0.0.0/1"]',
      '["203.0.113.7/32", "0.0.0.0/0"]',
      '["203.0.113.7"]',
      '["203.0.113.7/33"]',
      '["10.0.0.0/024"]',
      '["example.com/32"]',
      "[]",
    ];
    const results = await Promise.all(cases.map((value) => packer(["validate", ...varArgs(vars), legacyPath("packer/base")], { PKR_VAR_ssh_source_cidrs: value })));
    cases.forEach((value, i) => {
      const ours = builderCidrsProblems(parseBuilderCidrs(value)!).length === 0;
      assert.equal(results[i]!.exitCode === 0, ours, `${value}: packer ${results[i]!.exitCode === 0 ? "accepts" : "refuses"}, src/build-access.ts ${ours ? "accepts" : "refuses"}`);
    });
    assert.deepEqual(cases.map((value) => builderCidrsProblems(parseBuilderCidrs(value)!).length === 0), [true, true, true, ...cases.slice(3).map(() => false)]);
  });

  it("refuses a jira build whose installer has no pinned SHA-256, before anything is launched", async function () {
    for (const pin of ["", "0123", INSTALLER_SHA256.toUpperCase()]) {
      const vars = { ...contractVars("jira", join(scratch, "no-pin.json")), jira_installer_sha256: pin };
      const result = await packer(["validate", ...varArgs(vars), legacyPath("packer/jira")], { PKR_VAR_ssh_source_cidrs: BUILDER_CIDRS });
      assert.notEqual(result.exitCode, 0, `pin ${JSON.stringify(pin)} accepted`);
      assert.match(result.stdout + result.stderr, /jira_installer_sha256 variable must be the installer's pinned SHA-256/);
      assert.match(result.stdout + result.stderr, /packer\/files\/SHA256SUMS/);
    }
  });

  it("checks the uploaded installer against its pin after the upload and before Chef runs", async function () {
    const text = await readFile(join(packerDir, "jira", "jira.pkr.hcl"), "utf8");
    const upload = text.indexOf('source      = "${path.root}/../files/${local.installer}"');
    const verify = text.indexOf('script = "${path.root}/scripts/verify-installer.sh"');
    const chef = text.indexOf("scripts = local.chef_scripts");
    assert.ok(upload > 0 && verify > 0 && chef > 0, "upload, verify-installer.sh and the Chef run are all in packer/jira/jira.pkr.hcl");
    assert.ok(upload < verify && verify < chef, "verify-installer.sh must run between the installer's upload and Chef");
    const { build } = await hcl(join(packerDir, "jira", "jira.pkr.hcl"));
    const verifyStep = (build[0].provisioner.shell as HclJson[]).find((p) => String(p.script).endsWith("verify-installer.sh"))!;
    assert.deepEqual(verifyStep.environment_vars, [
      "INSTALLER=${local.workspace}/files/${local.installer}",
      "INSTALLER_SHA256=${var.jira_installer_sha256}",
    ]);
  });

  it("refuses jira and custom builds without a parent AMI", async function () {
    for (const stage of ["jira", "custom-dev"]) {
      const { source_ami: _parent, ...vars } = contractVars(stage, join(scratch, "no-parent.json"));
      const dir = stage === "jira" ? "packer/jira" : "packer/custom";
      const result = await packer(["validate", ...varArgs(vars), legacyPath(dir)], { PKR_VAR_ssh_source_cidrs: BUILDER_CIDRS });
      assert.notEqual(result.exitCode, 0, `${stage} validated without source_ami`);
      assert.match(result.stdout + result.stderr, /source_ami/);
    }
  });

  it("declares every contract variable in every stage", async function () {
    // run_id comes from the runner, not the program, but every stage must declare it for the runner to pass it.
    const common = ["stage", "stack", "inputs_hash", "run_id", "region", "ami_regions", "build_instance_type", "ssh_username", "manifest_path", "image_test_suites", "image_tests_count"];
    const expected: Record<string, string[]> = {
      base: [...common, "source_ami", "source_ami_owners", "source_ami_name_filter"],
      jira: [...common, "source_ami", "jira_version", "jira_installer_sha256"],
      custom: [...common, "source_ami", "jira_version", "environment", "chef_node"],
    };
    const inspected = await Promise.all(STAGE_DIRS.map((stage) => packer(["inspect", `packer/${stage}`])));
    for (const [i, stage] of STAGE_DIRS.entries()) {
      const result = inspected[i]!;
      assert.equal(result.exitCode, 0, result.stderr);
      const declared = [...result.stdout.matchAll(/^var\.([a-z0-9_]+):/gm)].map((m) => m[1]);
      for (const name of expected[stage]!) assert.ok(declared.includes(name), `packer/${stage} lacks variable "${name}"`);
    }
  });

  it("names each AMI after its stage and build time, with lineage tags on the AMI and its snapshots", async function () {
    for (const [stage, dir, extra] of [
      ["base", "packer/base", []],
      ["jira", "packer/jira", []],
      ["custom-prod", "packer/custom", ["-var-file", "packer/custom/prod.pkrvars.hcl"]],
    ] as const) {
      const vars: Record<string, string> = { ...contractVars(stage, join(scratch, "inspect.json")), run_id: RUN_ID };
      const result = await packer(["inspect", ...varArgs(vars), ...extra, dir], { PKR_VAR_ssh_source_cidrs: BUILDER_CIDRS });
      assert.equal(result.exitCode, 0, result.stderr);
      const amiName = inspectLocal(result.stdout, "ami_name");
      assert.match(amiName, new RegExp(`^jira-images-${stage}-(9\\.12\\.15-)?\\d{14}$`));
      const tags = mapEntries(inspectLocal(result.stdout, "lineage_tags"));
      assert.equal(tags["jira-images:stage"], stage);
      assert.equal(tags["jira-images:stack"], "prod", "the delete step checks the stack tag");
      assert.equal(tags["jira-images:parent-ami"], "{{ .SourceAMI }}");
      assert.equal(tags["jira-images:inputs-hash"], INPUTS_HASH);
      assert.match(tags["jira-images:build-time"] ?? "", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
      if (stage !== "base") assert.equal(tags["jira-images:jira-version"], "9.12.15");
      if (stage === "jira") assert.equal(tags["jira-images:jira-installer"], `sha256:${INSTALLER_SHA256}`);
      if (stage === "custom-prod") assert.equal(tags["jira-images:environment"], "prod");
      // Any AMI that exists passed its image tests (a failed check stops the build), all of them.
      assert.equal(tags["jira-images:tests"], "passed");
      assert.equal(tags["jira-images:tests-count"], vars.image_tests_count);
      assert.equal(Number(vars.image_tests_count), { base: 4, jira: 18, "custom-prod": 21 }[stage]);
      assert.ok(mapEntries(inspectLocal(result.stdout, "run_tags"))["jira-images:stage"] === stage, "run_tags lack the stage");
      assert.equal(mapEntries(inspectLocal(result.stdout, "run_tags"))["jira-images:stack"], "prod", "run_tags lack the stack");
      // run_tags reach the instance, its security group and key pair (amazon plugin 1.8); the volumes get run_volume_tags.
      assert.equal(mapEntries(inspectLocal(result.stdout, "run_tags"))["jira-images:run-id"], RUN_ID, "run_tags lack the run id");
      assert.equal(tags["jira-images:run-id"], RUN_ID, "the AMI lacks the run id");

      const text = await stageText(dir.replace("packer/", ""));
      assert.match(text, /^\s*tags\s*=\s*local\.lineage_tags$/m);
      assert.match(text, /^\s*snapshot_tags\s*=\s*local\.lineage_tags$/m);
      assert.match(text, /^\s*run_tags\s*=\s*local\.run_tags$/m);
      assert.match(text, /^\s*run_volume_tags\s*=\s*local\.run_tags$/m);
    }
  });

  it("builds private, encrypted images with a restricted temporary security group and the runner's manifest", async function () {
    for (const stage of STAGE_DIRS) {
      const text = await stageText(stage);
      assert.match(text, /source\s+"amazon-ebs"/, `${stage}: amazon-ebs`);
      assert.match(text, /^\s*encrypt_boot\s*=\s*true$/m, `${stage}: encrypt_boot`);
      assert.match(text, /^\s*source_ami\s*=\s*var\.source_ami$/m, `${stage}: source_ami from the variable`);
      assert.match(text, /^\s*ami_regions\s*=\s*var\.ami_regions$/m, `${stage}: ami_regions`);
      assert.match(text, /^\s*temporary_security_group_source_cidrs\s*=\s*var\.ssh_source_cidrs$/m, `${stage}: SG`);
      assert.doesNotMatch(text, /ami_users|ami_groups|snapshot_users|snapshot_groups/, `${stage}: must stay private`);
      assert.match(text, /post-processor\s+"manifest"\s*\{[^}]*output\s*=\s*var\.manifest_path/s, `${stage}: manifest`);
      assert.match(text, /custom_data\s*=\s*\{[^}]*stage\s*=[^}]*environment\s*=/s, `${stage}: custom_data`);
    }
    assert.match(await stageText("base"), /source_ami_filter[\s\S]*owners\s*=\s*var\.source_ami_owners/);
  });

  it("uploads only paths that exist in the repository (the LFS installer aside)", async function () {
    const sources: string[] = [];
    for (const stage of STAGE_DIRS) {
      const text = await stageText(stage);
      for (const match of text.matchAll(/"\$\{path\.root\}([^"$]*)"/g)) {
        sources.push(join(packerDir, stage) + match[1]);
      }
    }
    assert.ok(sources.length >= 7, `found only ${sources.length} upload/script paths`);
    for (const source of sources) {
      const info = await stat(source).catch(() => null);
      assert.ok(info, `${relative(root, source)} does not exist`);
    }
    assert.match(await stageText("jira"), /files\/\$\{local\.installer\}"[^}]*generated\s*=\s*true/s);
  });

  it("keeps every provisioning script shellcheck-clean", async function () {
    requireTool("shellcheck", "shellcheck");
    const scripts = (await filesUnder(packerDir)).filter((f) => f.endsWith(".sh"));
    assert.ok(scripts.length >= 5, `found only ${scripts.length} scripts`);
    const result = await execa("shellcheck", ["--shell=bash", "--severity=style", ...scripts], { reject: false });
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    for (const script of scripts) {
      const text = await readFile(script, "utf8");
      assert.match(text, /^#!\/bin\/bash\n/, `${relative(root, script)}: shebang`);
      assert.match(text, /^set -euo pipefail$/m, `${relative(root, script)}: strict mode`);
    }
  });
});

describe("provisioning smoke run (real Packer 1.6.6, null builder + shell-local)", function () {
  const fixture = "test/fixtures/packer-smoke";
  const standInRpm = "stand-in cinc rpm\n";
  let scratch: string;

  before(function () {
    requireTool("packer", "packer");
  });

  beforeEach(async function () {
    scratch = await mkdtemp(join(tmpdir(), "packer-smoke-"));
    await mkdir(join(scratch, "etc", "cinc"), { recursive: true });
    await mkdir(join(scratch, "var", "chef"), { recursive: true });
    prepareImageRoot(scratch);
  });

  afterEach(async function () {
    await rm(scratch, { recursive: true, force: true });
  });

  async function smoke(vars: Record<string, string>) {
    const all = {
      scratch,
      system_path: process.env["PATH"] ?? "/usr/bin:/bin",
      chef_client_rpm_sha256: createHash("sha256").update(standInRpm).digest("hex"),
      ...vars,
    };
    const result = await packer(["build", "-machine-readable", ...varArgs(all), fixture]);
    const calls = await readFile(join(scratch, "calls.log"), "utf8").catch(() => "");
    return { ...result, calls: calls.split("\n").filter((l) => l.length > 0) };
  }

  async function exists(path: string): Promise<boolean> {
    return (await stat(path).catch(() => null)) !== null;
  }

  it("custom stage: hardens the OS, installs the pinned client, runs Chef with the node, and cleans up", async function () {
    const result = await smoke({ chef_node: "dev" });
    assert.equal(result.exitCode, 0, result.stdout);
    const hardening = await readFile(join(scratch, "etc", "ssh", "sshd_config.d", "01-jira-images-hardening.conf"), "utf8");
    assert.match(hardening, /^PermitRootLogin no$/m);
    assert.match(hardening, /^PasswordAuthentication no$/m);
    assert.match(await readFile(join(scratch, "etc", "sysctl.d", "60-jira-images-hardening.conf"), "utf8"), /kernel\.kptr_restrict = 2/);
    assert.deepEqual(
      result.calls.filter((c) => !c.startsWith("rpm ") && !c.startsWith("cinc-client env")).map((c) => c.replace(/\/tmp\/\S+/g, "<tmp>")),
      [
        "dnf -y upgrade --refresh --releasever=latest",
        "dnf -y install amazon-ssm-agent",
        "systemctl enable amazon-ssm-agent",
        "dnf clean all",
        "curl --fail --silent --show-error --location --retry 3 --output <tmp> https://downloads.example.invalid/cinc-18.7.10-1.el9.x86_64.rpm",
        "dnf -y install <tmp>",
        "cinc-client --local-mode --config <tmp> --no-color --log_level info --node-name dev",
        "dnf -y remove cinc",
        "dnf clean all",
        // The base suite of the image tests, after image-cleanup.sh took the host keys: with a throwaway one.
        "sshd -T -h <tmp> -f <tmp>",
      ],
    );
    assert.ok(result.calls.includes("cinc-client env JIRA_VERSION=9.12.15 CHEF_LICENSE=accept-no-persist"));
    // The workspace, the client's state and the build's SSH key are gone from the "image".
    assert.equal(await exists(join(scratch, "var", "tmp", "jira-images")), false, "workspace left on the image");
    assert.equal(await exists(join(scratch, "var", "chef")), false);
    assert.equal(await exists(join(scratch, "etc", "cinc")), false);
    assert.equal(await exists(join(scratch, "home", "ec2-user", ".ssh", "authorized_keys")), false);
    assert.equal(await exists(join(scratch, "root", ".ssh", "authorized_keys")), false);
    // sshd's effective configuration was checked, and no host key is left to be shared.
    assert.match(result.stdout, /image-tests: ok: sshd hardening in force: sshd -T shows every hardened value in force/);
    assert.match(result.stdout, /image-tests: stage=base passed=4 failed=0/);
    for (const key of HOST_KEY_FILES) assert.equal(await exists(join(scratch, "etc", "ssh", key)), false, `${key} baked into the image`);
    assert.ok(await exists(join(scratch, "etc", "ssh", "sshd_config")), "sshd_config removed");
    assert.ok(await exists(join(scratch, "etc", "ssh", "moduli")), "moduli removed");
  });

  it("fails the build in its last step, the image tests, when sshd would not run with a hardened value", async function () {
    // A drop-in read before ours (cloud-init or a package could add one) wins in sshd.
    await writeFile(join(scratch, "etc", "ssh", "sshd_config.d", "00-early.conf"), "PasswordAuthentication yes\n");
    const result = await smoke({ chef_node: "dev" });
    assert.equal(result.exitCode, 1);
    assert.match(result.stdout, /ui,error,.*image-tests: FAILED sshd hardening in force: not in force: passwordauthentication no \(sshd -T: passwordauthentication yes\)/);
    assert.match(result.stdout, /image-tests: stage=base passed=3 failed=1/);
    assert.ok(result.calls.includes("dnf -y remove cinc"), "the tests did not run last");
  });

  it("jira stage: runs Chef with the jira-base role as the run list", async function () {
    const result = await smoke({ chef_run_list: "role[jira-base]" });
    assert.equal(result.exitCode, 0, result.stdout);
    assert.ok(
      result.calls.some((c) => /^cinc-client --local-mode --config \S+\/chef\/client\.rb .*--node-name jira --override-runlist role\[jira-base\]$/.test(c)),
      result.calls.join("\n"),
    );
  });

  it("stops the build, naming the known nodes, when the environment has no Chef node", async function () {
    const result = await smoke({ chef_node: "staging" });
    assert.equal(result.exitCode, 1);
    assert.match(result.stdout, /ui,error,.*run-chef: error: no Chef node 'staging'.*\(known nodes: dev prod\)/);
    assert.ok(!result.calls.some((c) => c.startsWith("cinc-client --")), "Chef ran without a node");
  });

  it("stops the build before installing a client download whose checksum does not match", async function () {
    const result = await smoke({ chef_node: "dev", chef_client_rpm_sha256: "0".repeat(64) });
    assert.equal(result.exitCode, 1);
    assert.match(result.stdout, /install-chef-client: error: checksum mismatch/);
    assert.ok(!result.calls.some((c) => c.startsWith("dnf -y install /")), "the unverified RPM was installed");
  });
});
