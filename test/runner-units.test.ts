/** Pure pieces of the stage runner: command line, redaction, manifest check, template inspection. */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { parseMachineReadable } from "../src/machine-readable.ts";
import { parseArgs } from "../src/runner/args.ts";
import { checkManifest, ManifestSchema } from "../src/runner/manifest.ts";
import { satisfiesConstraint, versionAtLeast } from "../src/runner/packer.ts";
import { findLfsPointers, inspectTemplate, preflight } from "../src/runner/preflight.ts";
import { containsCredential, redactCredentials, redactFileInPlace } from "../src/runner/redact.ts";
import { packerErrorLines } from "../src/runner/run.ts";
import { execa } from "execa";
import { LOGS, ROOT, lfsPointerText, tempDir } from "./fixtures/fake-packer-harness.ts";

describe("runner: command line", () => {
  it("reads every option, repeatable ones in order, in both `--flag value` and `--flag=value` forms", () => {
    const parsed = parseArgs([
      "--stage",
      "custom-dev",
      "--template=packer/custom",
      "--var",
      "source_ami=ami-0123456789abcdef0",
      "--var=ami_regions=[\"eu-west-1\"]",
      "--var-file",
      "packer/custom/dev.pkrvars.hcl",
      "--secret-var",
      "db_password",
      "--secret-var=api_token",
      "--input",
      "packer/chef",
      "--input=packer/files",
      "--require",
      "packer/files/atlassian-jira-software-9.12.15.tar.gz",
      "--log-dir",
      "/tmp/logs",
      "--timeout",
      "3600",
    ]);
    assert.deepEqual(parsed, {
      kind: "run",
      args: {
        stage: "custom-dev",
        template: "packer/custom",
        vars: [
          ["source_ami", "ami-0123456789abcdef0"],
          ["ami_regions", '["eu-west-1"]'],
        ],
        secretVars: ["db_password", "api_token"],
        varFiles: ["packer/custom/dev.pkrvars.hcl"],
        inputs: ["packer/chef", "packer/files"],
        requires: ["packer/files/atlassian-jira-software-9.12.15.tar.gz"],
        logDir: "/tmp/logs",
        timeoutSeconds: 3600,
      },
    });
    assert.deepEqual(parseArgs(["--stage", "base", "--help"]), { kind: "help" });
  });

  it("keeps `=` inside a var's value and allows an empty value", () => {
    const parsed = parseArgs(["--stage", "base", "--template", "t", "--var", "filter=name=al2023-*", "--var", "source_ami="]);
    assert.equal(parsed.kind, "run");
    assert.deepEqual(parsed.kind === "run" && parsed.args.vars, [
      ["filter", "name=al2023-*"],
      ["source_ami", ""],
    ]);
  });

  it("rejects unknown options, missing values, bad names and bad timeouts with a USAGE: prefix", () => {
    const cases: Array<[string[], RegExp]> = [
      [["--stage", "base"], /--template is required/],
      [["--template", "t"], /--stage is required/],
      [["--stage", "Base!", "--template", "t"], /--stage "Base!": use lower-case/],
      [["--stage", "base", "--template", "t", "-var", "a=b"], /unknown option -var/],
      [["--stage", "base", "--template", "t", "extra"], /unexpected argument "extra"/],
      [["--stage", "base", "--template", "t", "--var"], /--var needs a value/],
      [["--stage", "base", "--template", "t", "--var", "=x"], /"" is not a valid variable name/],
      [["--stage", "base", "--template", "t", "--var", "1x=y"], /"1x" is not a valid variable name/],
      [["--stage", "base", "--template", "t", "--timeout", "0"], /not a positive number of seconds/],
      [["--stage", "base", "--template", "t", "--timeout", "soon"], /not a positive number of seconds/],
      [["--stage", "a", "--stage", "b", "--template", "t"], /--stage given twice/],
      [["--stage", "base", "--template="], /--template is empty/],
      [["--stage", "base", "--template", "t", "--template="], /--template given twice/],
      ...["--var-file", "--input", "--require", "--log-dir"].map((flag): [string[], RegExp] => [
        ["--stage", "base", "--template", "t", flag, ""],
        new RegExp(`${flag} is empty`),
      ]),
    ];
    for (const [argv, message] of cases) {
      assert.throws(() => parseArgs(argv), (error: Error) => {
        assert.match(error.message, /^USAGE: /);
        assert.match(error.message, message);
        return true;
      });
    }
  });
});

describe("runner: credential redaction", () => {
  // Assembled at run time: no credential-shaped literal in the repository.
  const keyId = ["AKIA", "ZZZZ5EXAMPLE", "KEY1"].join("");
  const sessionKeyId = ["ASIA", "ZZZZ5EXAMPLE", "KEY2"].join("");
  const secret = ["abcdEFGHijkl", "MNOPqrstUVWX", "yz0123456789+/AB"].join("");

  it("redacts access key ids and named secrets in the usual spellings", () => {
    const cases = [
      `AWS_ACCESS_KEY_ID=${keyId}`,
      `key ${sessionKeyId} used`,
      `aws_secret_access_key = ${secret}`,
      `AWS_SECRET_ACCESS_KEY="${secret}"`,
      `"SecretAccessKey": "${secret}"`,
      `secret_key: '${secret}'`,
      `AWS_SESSION_TOKEN=${secret}${secret}==`,
      `"SessionToken":"${secret}"`,
    ];
    for (const text of cases) {
      const redacted = redactCredentials(text);
      assert.ok(containsCredential(text), text);
      assert.ok(!redacted.includes(keyId) && !redacted.includes(sessionKeyId) && !redacted.includes(secret), redacted);
      assert.match(redacted, /\[REDACTED(-AWS-ACCESS-KEY-ID)?\]/);
      assert.equal(containsCredential(redacted), false, redacted);
    }
  });

  it("leaves AMI ids, hashes, instance ids and ordinary build output alone", () => {
    const text = readFileSync(join(LOGS, "amazon-ebs-success.log"), "utf8") +
      "sha1 0123456789abcdef0123456789abcdef01234567 snapshot snap-0aa11bb22cc33dd44 AKIA-docs secret_key=short\n";
    assert.equal(containsCredential(text), false);
    assert.equal(redactCredentials(text), text);
  });

  it("preflight refuses a credential in a variable's value or spelled as name=value, whatever the variable is called", async () => {
    const template = join(tempDir("cred-var-"), "template");
    mkdirSync(template);
    writeFileSync(join(template, "main.pkr.hcl"), 'variable "note" {\n  type = string\n}\n');
    const attempts: Array<[string, string]> = [
      ["note", `uses ${keyId}`],
      ["note", `aws_secret_access_key=${secret}`],
      ["SessionToken", secret],
      ["note", "an ordinary value"],
    ];
    const refused = await Promise.all(
      attempts.map(([key, value]) =>
        preflight({ stage: "base", template, vars: [[key, value]], secretVars: [], varFiles: [], inputs: [], requires: [] }, template).then(
          () => false,
          (error: Error) => {
            assert.match(error.message, new RegExp(`^CREDENTIAL_IN_VAR: --var ${key}=… looks like an AWS credential`));
            assert.ok(!error.message.includes(keyId) && !error.message.includes(secret));
            return true;
          },
        ),
      ),
    );
    assert.deepEqual(refused, [true, true, true, false]);
  });

  it("rewrites a large log in place, across read-chunk borders, keeping its mode", async () => {
    const file = join(tempDir("redact-"), "build.log");
    const filler = "1732540877,,ui,message,    amazon-ebs.jira: " + "x".repeat(200) + "\n";
    const lines: string[] = [];
    for (let i = 0; i < 12_000; i++) lines.push(i % 1000 === 999 ? `1732540877,,ui,message,    env AWS_ACCESS_KEY_ID=${keyId}\n` : filler);
    writeFileSync(file, lines.join(""));
    chmodSync(file, 0o600);
    assert.equal(await redactFileInPlace(file), true);
    const text = readFileSync(file, "utf8");
    assert.ok(!text.includes(keyId));
    assert.equal(text.split("[REDACTED-AWS-ACCESS-KEY-ID]").length - 1, 12);
    assert.equal(text.length, lines.join("").length + 12 * ("[REDACTED-AWS-ACCESS-KEY-ID]".length - keyId.length));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(await redactFileInPlace(file), false, "nothing left to redact");
  });
});

describe("runner: manifest check", () => {
  const manifest = ManifestSchema.parse(JSON.parse(readFileSync(join(LOGS, "amazon-ebs-manifest.manifest.json"), "utf8")));
  const image = { target: "amazon-ebs.custom-dev", region: "eu-west-1", amiId: "ami-0d0d0d0d0d0d0d0d1", amis: { "eu-west-1": "ami-0d0d0d0d0d0d0d0d1" } };

  it("only looks at the builds of last_run_uuid (the manifest appends runs)", () => {
    assert.deepEqual(checkManifest(manifest, image), { ok: true, runUuid: "7f3e2a10-5b6c-4d8e-a9f0-1b2c3d4e5f60" });
  });

  it("reports a manifest whose last run has another AMI, several AMIs or none", () => {
    const other = { ...image, amiId: "ami-0e0e0e0e0e0e0e0e0", amis: { "eu-west-1": "ami-0e0e0e0e0e0e0e0e0" } };
    const check = checkManifest(manifest, other);
    assert.equal(check.ok, false);
    assert.match(!check.ok ? check.problem : "", /lists eu-west-1:ami-0d0d0d0d0d0d0d0d1, the log says eu-west-1:ami-0e0e0e0e0e0e0e0e0/);
    const nullOnly = { ...manifest, builds: manifest.builds.map((b) => ({ ...b, artifact_id: "Null" })) };
    assert.match((checkManifest(nullOnly, image) as { problem: string }).problem, /lists no AMI/);
  });
});

describe("runner: template inspection and pointer scan", () => {
  it("finds `variable \"manifest_path\"` in HCL (not in comments) and in HCL JSON, and required_plugins in the parent folder", async () => {
    const root = tempDir("inspect-");
    mkdirSync(join(root, "packer", "jira"), { recursive: true });
    writeFileSync(join(root, "packer", "plugins.pkr.hcl"), "packer {\n  required_plugins {\n  }\n}\n");
    writeFileSync(join(root, "packer", "jira", "variables.pkr.hcl"), 'variable "manifest_path" {\n  type = string\n}\n');
    const jira = await inspectTemplate("packer/jira", root);
    assert.equal(jira.declaresManifestPath, true);
    assert.equal(jira.requiredPluginsDir, join(root, "packer"));
    assert.equal(jira.requiredPluginsInTemplate, false);

    mkdirSync(join(root, "commented"));
    writeFileSync(join(root, "commented", "main.pkr.hcl"), '# variable "manifest_path" {\nvariable "manifest_path_old" {\n}\n');
    const commented = await inspectTemplate(join(root, "commented"), root);
    assert.equal(commented.declaresManifestPath, false);
    assert.equal(commented.requiredPluginsDir, undefined);

    mkdirSync(join(root, "json"));
    writeFileSync(join(root, "json", "main.pkr.json"), JSON.stringify({ variable: { manifest_path: { type: "string" } } }));
    assert.equal((await inspectTemplate(join(root, "json"), root)).declaresManifestPath, true);
    writeFileSync(join(root, "legacy.json"), JSON.stringify({ variables: { manifest_path: "" }, builders: [] }));
    const legacy = await inspectTemplate("legacy.json", root);
    assert.equal(legacy.buildPath, join(root, "legacy.json"));
    assert.equal(legacy.declaresManifestPath, true);
  });

  it("reads template files a stage folder links in (packer/common), ignoring links to folders, dangling links and loops", async () => {
    const root = tempDir("inspect-links-");
    mkdirSync(join(root, "packer", "common"), { recursive: true });
    mkdirSync(join(root, "packer", "base"));
    writeFileSync(join(root, "packer", "common", "variables.pkr.hcl"), 'variable "manifest_path" {\n  type = string\n}\n');
    writeFileSync(join(root, "packer", "common", "plugins.pkr.hcl"), "packer {\n  required_plugins {\n  }\n}\n");
    writeFileSync(join(root, "packer", "base", "base.pkr.hcl"), 'source "null" "base" {\n}\n');
    symlinkSync("../common/variables.pkr.hcl", join(root, "packer", "base", "common-variables.pkr.hcl"));
    symlinkSync("../common/plugins.pkr.hcl", join(root, "packer", "base", "common-plugins.pkr.hcl"));
    symlinkSync("../common", join(root, "packer", "base", "folder.pkr.hcl"));
    symlinkSync("../common/gone.pkr.hcl", join(root, "packer", "base", "dangling.pkr.hcl"));
    symlinkSync("loop.pkr.hcl", join(root, "packer", "base", "loop.pkr.hcl"));
    const base = await inspectTemplate("packer/base", root);
    assert.deepEqual(
      base.files.map((f) => f.slice(root.length + 1)),
      ["packer/base/base.pkr.hcl", "packer/base/common-plugins.pkr.hcl", "packer/base/common-variables.pkr.hcl"],
    );
    assert.equal(base.declaresManifestPath, true);
    assert.equal(base.requiredPluginsInTemplate, true);
    assert.equal(base.requiredPluginsDir, join(root, "packer", "base"));
    assert.deepEqual(await findLfsPointers(join(root, "packer")), []);
  });

  it("finds pointers in nested folders, through file symlinks, skipping .git and large or empty files", async () => {
    const root = tempDir("pointers-");
    mkdirSync(join(root, "cookbooks", "jira", "files"), { recursive: true });
    mkdirSync(join(root, ".git", "lfs"), { recursive: true });
    writeFileSync(join(root, "cookbooks", "jira", "files", "a.tar.gz"), lfsPointerText(10));
    writeFileSync(join(root, ".git", "lfs", "b"), lfsPointerText(20));
    writeFileSync(join(root, "big.bin"), lfsPointerText(30) + "x".repeat(2048));
    writeFileSync(join(root, "empty"), "");
    writeFileSync(join(root, "recipe.rb"), "package 'git'\n");
    symlinkSync(join(root, "cookbooks", "jira", "files", "a.tar.gz"), join(root, "link.tar.gz"));
    symlinkSync(root, join(root, "loop"));
    const found = await findLfsPointers(root);
    assert.deepEqual(
      found.map((f) => [f.path.slice(root.length + 1), f.pointer.size]),
      [
        ["cookbooks/jira/files/a.tar.gz", 10],
        ["link.tar.gz", 10],
      ],
    );
  });
});

describe("runner: small helpers", () => {
  it("compares Packer versions numerically", () => {
    assert.equal(versionAtLeast("1.6.6", "1.7.0"), false);
    assert.equal(versionAtLeast("1.7.0", "1.7.0"), true);
    assert.equal(versionAtLeast("1.10.0", "1.7.0"), true);
    assert.equal(versionAtLeast("1.11.2-dev", "1.7.0"), true);
  });

  it("checks Packer's version against HashiCorp constraints", () => {
    assert.equal(satisfiesConstraint("1.9.0", ">= 1.9.0"), true);
    assert.equal(satisfiesConstraint("1.6.6", ">= 1.9.0"), false);
    assert.equal(satisfiesConstraint("1.11.2", ">= 1.9.0, < 2.0.0"), true);
    assert.equal(satisfiesConstraint("2.0.0", ">= 1.9.0, < 2.0.0"), false);
    assert.equal(satisfiesConstraint("1.12.0", "~> 1.9"), true);
    assert.equal(satisfiesConstraint("2.1.0", "~> 1.9"), false);
    assert.equal(satisfiesConstraint("1.9.5", "~> 1.9.2"), true);
    assert.equal(satisfiesConstraint("1.10.0", "~> 1.9.2"), false);
    assert.equal(satisfiesConstraint("1.9.4", "1.9.4"), true);
    assert.equal(satisfiesConstraint("1.9.4", "!= 1.9.4"), false);
    assert.throws(() => satisfiesConstraint("1.9.4", ">= latest"), /^JiraImagesError: PACKER_VERSION: cannot read the version constraint/);
  });

  it("reads the project's Packer required_version for every stage folder (packer/plugins.pkr.hcl)", async () => {
    const constraint = /required_version\s*=\s*"([^"]+)"/.exec(readFileSync(join(ROOT, "packer", "plugins.pkr.hcl"), "utf8"))?.[1];
    assert.ok(constraint, "packer/plugins.pkr.hcl declares required_version");
    for (const stage of ["base", "jira", "custom"]) {
      const template = await inspectTemplate(join("packer", stage), ROOT);
      assert.deepEqual(template.requiredVersion, { constraint, file: join(ROOT, "packer", "plugins.pkr.hcl") }, stage);
    }
  });

  it("quotes Packer's ui errors line by line, or the per-build errors, or the last foreign output", () => {
    const failed = packerErrorLines(parseMachineReadable(readFileSync(join(LOGS, "amazon-ebs-error.log"), "utf8")));
    assert.ok(failed.includes("packer: \tstatus code: 403, request id: 5b7a3e2c-1f4d-4a8b-9c0d-2e3f4a5b6c7d"));
    assert.ok(failed.every((l) => l.startsWith("packer: ") && l.trim() !== "packer:"));
    assert.deepEqual(packerErrorLines(parseMachineReadable("1,amazon-ebs.x,error,boom%!(PACKER_COMMA) twice\n")), [
      "packer: amazon-ebs.x: boom, twice",
    ]);
    assert.deepEqual(packerErrorLines(parseMachineReadable("panic: plugin exited\n")), ["packer output: panic: plugin exited"]);
  });

  it("the watchdog script is shellcheck-clean POSIX sh (it runs under dash on Debian)", async () => {
    const result = await execa("shellcheck", ["--shell=sh", join(ROOT, "src/runner/watchdog.sh")], { reject: false });
    if (result.exitCode === undefined) throw new Error("shellcheck is needed for this test: apt-get install -y shellcheck");
    assert.equal(result.exitCode, 0, String(result.stdout));
  });
});
