import { createHash } from "node:crypto";
import assert from "node:assert/strict";
import { appendFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { execa } from "execa";
import { parseDocument } from "yaml";
import { copyPackerFolder } from "./helpers/packer-copy.ts";
import { tempDir } from "./helpers/temp-dir.ts";
import { loadStackConfigFile } from "../src/config.ts";
import { planStackInputs } from "../src/inputs-hash.ts";
import { rebuildPlan, renderMarkdown, renderText, runPlan, type PlanRequest } from "../src/driver/plan.ts";
import { recordedStages } from "../src/driver/checkpoint.ts";
import { setStackConfigValue } from "../src/driver/stack-file.ts";

const ROOT = resolve(import.meta.dirname, "..");
const AMI = { base: "ami-0aaaaaaaaaaaaaaa1", jira: "ami-0bbbbbbbbbbbbbbb2", "custom-dev": "ami-0ccccccccccccccc3" } as const;

/** A copy of what the plan reads (stack files and packer/), so tests can edit inputs. */
function projectCopy(): string {
  const dir = tempDir("plan-");
  for (const entry of ["Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"]) cpSync(join(ROOT, entry), join(dir, entry));
  // Not the installers: they can be gigabytes after `git lfs pull`.
  copyPackerFolder(ROOT, dir);
  return dir;
}

/** What `pulumi up` leaves in a file backend: the stage commands with their triggers and stdout. */
function checkpointOf(root: string, stack: string): object {
  const planned = planStackInputs(loadStackConfigFile(root, stack), root);
  const parentAmi = (parent: string | undefined) => (parent === undefined ? "none" : AMI[parent as keyof typeof AMI]);
  return {
    version: 3,
    checkpoint: {
      stack: `organization/jira-images/${stack}`,
      latest: {
        manifest: { time: "2026-11-20T10:00:00Z", version: "v3.248.0" },
        resources: [
          { urn: `urn:pulumi:${stack}::jira-images::pulumi:pulumi:Stack::jira-images-${stack}`, type: "pulumi:pulumi:Stack", custom: false },
          ...planned.map((p) => ({
            urn: `urn:pulumi:${stack}::jira-images::jira-images:pipeline:ImagePipeline$jira-images:pipeline:ImageStage$command:local:Command::${p.stage}-build`,
            type: "command:local:Command",
            custom: true,
            id: `${p.stage}-build-id`,
            inputs: { create: "exec node ...", triggers: [...p.triggers.slice(0, -1), `parentAmi=${parentAmi(p.parent)}`] },
            outputs: {
              stdout: JSON.stringify({
                stage: p.stage,
                amiId: AMI[p.stage as keyof typeof AMI],
                region: "eu-west-1",
                amis: { "eu-west-1": AMI[p.stage as keyof typeof AMI] },
                logFile: `.packer-logs/${p.stage}/build.log`,
              }),
            },
          })),
        ],
      },
    },
  };
}

function writeCheckpoint(root: string, stack: string, options: { gzip?: boolean } = {}): string {
  const dir = join(root, ".pulumi-state", ".pulumi", "stacks", "jira-images");
  mkdirSync(dir, { recursive: true });
  const json = JSON.stringify(checkpointOf(root, stack));
  const file = join(dir, `${stack}.json${options.gzip ? ".gz" : ""}`);
  writeFileSync(file, options.gzip ? gzipSync(json) : json);
  return file;
}

async function plan(root: string, request: Partial<PlanRequest> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t), stderrIsTTY: false };
  const code = await runPlan({ stack: "dev", format: "text", root, env: {}, ...request }, io);
  return { code, stdout: out.join(""), stderr: err.join("") };
}

function line(stdout: string, stage: string): string {
  const found = stdout.split("\n").find((l) => l.trim().startsWith(`${stage} `));
  assert.ok(found, `no line for ${stage} in:\n${stdout}`);
  return found;
}

describe("offline rebuild plan", () => {
  let root: string;
  beforeEach(() => {
    root = projectCopy();
  });

  it("on a fresh clone (no checkpoint) every stage is new", async () => {
    const { code, stdout } = await plan(root);
    assert.equal(code, 0);
    assert.match(stdout, /no checkpoint of stack dev in \.pulumi-state/);
    for (const stage of ["base", "jira", "custom-dev"]) assert.match(line(stdout, stage), /REBUILD\s+not built yet/);
    assert.match(stdout, /3 of 3 stages rebuild/);
  });

  it("right after an up nothing rebuilds, and the current AMIs are shown", async () => {
    writeCheckpoint(root, "dev");
    const { code, stdout } = await plan(root);
    assert.equal(code, 0);
    assert.match(stdout, /compared with the checkpoint \.pulumi-state\/\.pulumi\/stacks\/jira-images\/dev\.json/);
    assert.match(line(stdout, "jira"), new RegExp(`keep\\s+inputs unchanged\\s+\\[now ${AMI.jira}\\]`));
    assert.match(stdout, /0 of 3 stages rebuild/);
  });

  it("a Chef workspace change rebuilds jira by name and custom-dev, not base", async () => {
    writeCheckpoint(root, "dev");
    appendFileSync(join(root, "packer/chef/roles/jira-base.json"), "\n");
    const { stdout } = await plan(root);
    assert.match(line(stdout, "base"), /keep/);
    assert.match(line(stdout, "jira"), /REBUILD\s+workspace changed/);
    assert.match(line(stdout, "custom-dev"), /REBUILD\s+workspace changed/);
  });

  it("a changed check of the jira image tests rebuilds the stages that run it, as tests, not base", async () => {
    writeCheckpoint(root, "dev");
    appendFileSync(join(root, "packer/common/image-tests/jira.sh"), "\n# changed\n");
    const { stdout } = await plan(root);
    assert.match(line(stdout, "base"), /keep/);
    assert.match(line(stdout, "jira"), /REBUILD\s+tests changed/);
    assert.match(line(stdout, "custom-dev"), /REBUILD\s+tests changed/);
  });

  it("a base template change rebuilds base and its descendants follow", async () => {
    writeCheckpoint(root, "dev", { gzip: true });
    appendFileSync(join(root, "packer/base/base.pkr.hcl"), "\n# changed\n");
    const { stdout } = await plan(root);
    assert.match(line(stdout, "base"), /REBUILD\s+template changed/);
    assert.match(line(stdout, "jira"), /REBUILD\s+parent base rebuilds/);
    assert.match(line(stdout, "custom-dev"), /REBUILD\s+parent jira rebuilds/);
  });

  it("prod's var file does not touch dev's plan; a dev config change shows as vars", async () => {
    writeCheckpoint(root, "dev");
    appendFileSync(join(root, "packer/custom/prod.pkrvars.hcl"), "\n");
    assert.match((await plan(root)).stdout, /0 of 3 stages rebuild/);
    const stackFile = join(root, "Pulumi.dev.yaml");
    const edited = readFileSync(stackFile, "utf8").replace(/(jira-images:buildInstanceType:) \S+/, "$1 t3.xlarge");
    assert.notEqual(edited, readFileSync(stackFile, "utf8"));
    writeFileSync(stackFile, edited);
    const { stdout } = await plan(root);
    assert.match(line(stdout, "base"), /REBUILD\s+vars changed/);
  });

  it("markdown: a table and a Mermaid graph with the rebuilding stages marked", async () => {
    writeCheckpoint(root, "dev");
    appendFileSync(join(root, "packer/custom/dev.pkrvars.hcl"), "\n");
    const { stdout } = await plan(root, { format: "markdown" });
    assert.match(stdout, /^### Image rebuild plan: stack `dev`/);
    assert.match(stdout, /\| `jira` \| `base` \| keep \| inputs unchanged \| `ami-0bbbbbbbbbbbbbbb2` \|/);
    assert.match(stdout, /\| `custom-dev` \| `jira` \| \*\*rebuild\*\* \| `vars` changed \|/);
    assert.match(stdout, /```mermaid\ngraph LR\n {2}base\["base"\]\n {2}base --> jira\["jira"\]\n {2}jira --> custom_dev\["custom-dev"\]/);
    assert.match(stdout, /class custom_dev rebuild\n```/);
  });

  it("shows the AMI in the stack's region as current, not the alphabetically first region's copy", async () => {
    // prod as a stack that builds its own chain (its file may pin jira from dev).
    const stackFile = join(root, "Pulumi.prod.yaml");
    const doc = parseDocument(readFileSync(stackFile, "utf8"));
    doc.deleteIn(["config", "jira-images:promoted"]);
    writeFileSync(stackFile, doc.toString());
    const file = writeCheckpoint(root, "prod");
    const checkpoint = JSON.parse(readFileSync(file, "utf8"));
    const copies: Record<string, string> = {};
    for (const resource of checkpoint.checkpoint.latest.resources) {
      if (resource.type !== "command:local:Command") continue;
      const result = JSON.parse(resource.outputs.stdout);
      if (result.amiId === undefined) continue; // custom-prod: no AMI in this fixture
      const copy = `ami-0e${result.amiId.slice(6)}`;
      copies[result.stage] = copy;
      // As the runner prints a two-region build: amiId/region are Packer's first (sorted) region.
      resource.outputs.stdout = JSON.stringify({ ...result, amiId: copy, region: "eu-central-1", amis: { "eu-central-1": copy, "eu-west-1": result.amiId } });
    }
    writeFileSync(file, JSON.stringify(checkpoint));
    const { stdout } = await plan(root, { stack: "prod" });
    assert.match(line(stdout, "jira"), new RegExp(`\\[now ${AMI.jira}\\]`));
    assert.doesNotMatch(stdout, new RegExp(copies.jira!));
  });

  it("lists what would stop an up as blockers: a fresh clone's missing installer, an unset builder address", async () => {
    const { code, stdout } = await plan(root);
    assert.equal(code, 0);
    const blockers = stdout.slice(stdout.indexOf("Blockers: an up stops before building anything until these are fixed:\n"));
    assert.match(blockers, /^ {2}REQUIRED_FILE_MISSING packer\/files\/atlassian-jira-software-9\.12\.15\.tar\.gz \(stage jira\): does not exist .*atlassian\.com/m);
    assert.match(blockers, /^ {2}SSH_CIDRS_INVALID PKR_VAR_ssh_source_cidrs: not set/m);
    const markdown = (await plan(root, { format: "markdown", env: { PKR_VAR_ssh_source_cidrs: '["0.0.0.0/0"]' } })).stdout;
    assert.match(markdown, /^\*\*Blockers: an up stops before building anything until these are fixed:\*\*\n\n- REQUIRED_FILE_MISSING /m);
    assert.match(markdown, /^- SSH_CIDRS_INVALID PKR_VAR_ssh_source_cidrs: "0\.0\.0\.0\/0" opens SSH/m);
    writeFileSync(join(root, "packer/files/atlassian-jira-software-9.12.15.tar.gz"), "stand-in installer\n");
    assert.match((await plan(root)).stdout, /^ {2}INSTALLER_NOT_PINNED packer\/files\/atlassian-jira-software-9\.12\.15\.tar\.gz \(stage jira\)/m);
    const pin = createHash("sha256").update("stand-in installer\n").digest("hex");
    writeFileSync(join(root, "packer/files/SHA256SUMS"), `${pin}  atlassian-jira-software-9.12.15.tar.gz\n`);
    const ready = await plan(root, { env: { PKR_VAR_ssh_source_cidrs: '["203.0.113.7/32"]' } });
    assert.doesNotMatch(ready.stdout, /Blockers/);
  });

  it("a backend that cannot be read offline shows every stage as new and says why", async () => {
    writeCheckpoint(root, "dev");
    const { code, stdout } = await plan(root, { env: { PULUMI_BACKEND_URL: "s3://state-bucket/jira" } });
    assert.equal(code, 0);
    assert.match(stdout, /the s3:\/\/state-bucket\/jira backend cannot be read offline/);
    assert.match(stdout, /3 of 3 stages rebuild/);
  });

  it("a corrupt checkpoint or an unknown stack is a clear error, exit 1", async () => {
    const file = writeCheckpoint(root, "dev");
    writeFileSync(file, "{not json");
    const corrupt = await plan(root);
    assert.equal(corrupt.code, 1);
    assert.match(corrupt.stderr, /^pipeline-state: .*dev\.json: not JSON/);
    const unknown = await plan(root, { stack: "qa" });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Pulumi\.qa\.yaml does not exist/);
  });
});

describe("offline plan of a promoted stack (jira-images:promoted)", () => {
  const PROMOTED = "ami-0123456789abcdef0";
  let root: string;
  /** Sets prod's pin as `promote` writes it (the file may hold a pending one already). */
  function pin(value: Record<string, string>): void {
    const file = join(root, "Pulumi.prod.yaml");
    const edited = setStackConfigValue(readFileSync(file, "utf8"), "Pulumi.prod.yaml", { key: "jira-images:promoted", value, comment: "pin" });
    writeFileSync(file, edited.text);
  }
  beforeEach(() => {
    root = projectCopy();
  });

  it("prod that built its own chain: jira promoted from dev, base with it, custom-prod rebuilds on the new parent AMI", async () => {
    writeCheckpoint(root, "prod");
    pin({ fromStack: "dev", stage: "jira", amiId: PROMOTED });
    const { code, stdout } = await plan(root, { stack: "prod" });
    assert.equal(code, 0);
    assert.match(line(stdout, "jira"), new RegExp(`pinned {3}promoted from dev ${PROMOTED}; this stack's own build \\(${AMI.jira}\\) leaves its state {2}\\[now ${PROMOTED}\\]`));
    assert.match(line(stdout, "base"), /pinned {3}from dev with the promoted jira; this stack's own build \(ami-0a\w+\) leaves its state$/);
    assert.match(line(stdout, "custom-prod"), new RegExp(`REBUILD {2}parent AMI changes from ${AMI.jira} to ${PROMOTED}`));
    assert.match(stdout, /^1 of 3 stages rebuild, 2 taken from dev\.$/m);
    assert.match(stdout, new RegExp(`^Promotion: jira: promoted from dev ${PROMOTED}; this stack's own build \\(${AMI.jira}\\) leaves its state; custom-prod rebuilds \\(parent AMI changes from ${AMI.jira} to ${PROMOTED}\\)$`, "m"));

    const markdown = (await plan(root, { stack: "prod", format: "markdown" })).stdout;
    assert.match(markdown, new RegExp(`^\\*\\*Promotion:\\*\\* jira: promoted from dev ${PROMOTED}; .*custom-prod rebuilds`, "m"));
    assert.match(markdown, new RegExp(`\\| \`jira\` \\| \`base\` \\| pinned \\| promoted from dev ${PROMOTED}.* \\| \`${PROMOTED}\` \\|`));
    assert.match(markdown, /\| `custom-prod` \| `jira` \| \*\*rebuild\*\* \| parent AMI changes from /);
    assert.match(markdown, /^ {2}class base,jira pinned$/m);
  });

  it("after the up that took the pin nothing rebuilds; a fresh prod builds only custom-prod", async () => {
    const file = writeCheckpoint(root, "prod");
    pin({ fromStack: "dev", stage: "jira", amiId: PROMOTED });
    // What that up leaves: prod's own base and jira builds deleted, custom-prod built on the pinned AMI.
    const checkpoint = JSON.parse(readFileSync(file, "utf8"));
    checkpoint.checkpoint.latest.resources = checkpoint.checkpoint.latest.resources
      .filter((r: { urn: string }) => !/::(base|jira)-build$/.test(r.urn))
      .map((r: { urn: string; inputs?: { triggers: string[] } }) =>
        r.inputs ? { ...r, inputs: { ...r.inputs, triggers: r.inputs.triggers.map((t) => (t.startsWith("parentAmi=") ? `parentAmi=${PROMOTED}` : t)) } } : r,
      );
    writeFileSync(file, JSON.stringify(checkpoint));
    const { stdout } = await plan(root, { stack: "prod" });
    assert.match(line(stdout, "jira"), new RegExp(`pinned {3}promoted from dev ${PROMOTED} {2}\\[now ${PROMOTED}\\]$`));
    assert.match(line(stdout, "custom-prod"), /keep {5}inputs unchanged/);
    assert.match(stdout, new RegExp(`^Promotion: jira: promoted from dev ${PROMOTED}; custom-prod keeps its image$`, "m"));

    const fresh = projectCopy();
    root = fresh;
    pin({ fromStack: "dev", stage: "jira", amiId: PROMOTED });
    const first = await plan(fresh, { stack: "prod" });
    assert.match(first.stdout, /^1 of 3 stages rebuild, 2 taken from dev\.$/m);
    assert.match(line(first.stdout, "custom-prod"), /REBUILD {2}not built yet in this stack/);
    // The program builds only custom-prod: the jira installer of a fresh clone stops nothing.
    assert.doesNotMatch(first.stdout, /REQUIRED_FILE_MISSING packer\/files\/atlassian-jira-software/);
    assert.match(first.stdout, /^ {2}SSH_CIDRS_INVALID /m);
  });

  it("a pin without an AMI yet is a blocker that names the promote command", async () => {
    pin({ fromStack: "dev", stage: "jira" });
    const { code, stdout } = await plan(root, { stack: "prod" });
    assert.equal(code, 0);
    assert.match(line(stdout, "jira"), /pinned {3}taken from dev, nothing promoted yet$/);
    assert.match(stdout, /^ {2}PROMOTION_PENDING Pulumi\.prod\.yaml: jira-images:promoted takes jira from dev, but no image is promoted yet; run `npm run pipeline -- promote --from dev --to prod`$/m);
  });
});

describe("rebuild plan rules", () => {
  const planned = [
    { stage: "base", parent: undefined, triggers: ["template=a", "workspace=b", "installers=c", "vars=d", "parentAmi=none"] },
    { stage: "jira", parent: "base", triggers: ["template=e", "workspace=f", "installers=g", "vars=h", "parentAmi=<parent-ami>"] },
  ].map((p) => ({ ...p, hashes: {} as never, inputsHash: "x" }));

  it("names every changed input, ignores the parent AMI, and an entry missing from state counts as changed", () => {
    const recorded = recordedStages(
      {
        version: 3,
        checkpoint: {
          latest: {
            resources: [
              { type: "command:local:Command", urn: "urn:pulumi:dev::p::a$command:local:Command::base-build", inputs: { triggers: ["template=a", "workspace=b", "installers=c", "vars=d", "parentAmi=none"] } },
              { type: "command:local:Command", urn: "urn:pulumi:dev::p::a$command:local:Command::jira-build", inputs: { triggers: ["template=E", "workspace=f", "vars=H", "parentAmi=ami-0123456789abcdef0"] } },
            ],
          },
        },
      },
      "dev.json",
    );
    const plans = rebuildPlan(planned, recorded, "eu-west-1");
    assert.deepEqual(plans[0]!.verdict, { kind: "unchanged" });
    assert.deepEqual(plans[1]!.verdict, { kind: "changed", inputs: ["template", "installers", "vars"] });
    assert.match(renderText(plans, { stack: "dev", stateSource: "s" }), /jira\s+REBUILD {2}template, installers, vars changed/);
    assert.match(renderMarkdown(plans, { stack: "dev", stateSource: "s" }), /`template`, `installers`, `vars` changed/);
  });

  it("reads the replacement, not the replaced command still pending deletion under the same URN", () => {
    const urn = "urn:pulumi:dev::p::a$command:local:Command::base-build";
    for (const order of ["new first", "old first"]) {
      const current = { type: "command:local:Command", urn, inputs: { triggers: ["template=a"] } };
      const replaced = { type: "command:local:Command", urn, delete: true, inputs: { triggers: ["template=old"] } };
      const resources = order === "new first" ? [current, replaced] : [replaced, current];
      const recorded = recordedStages({ version: 3, checkpoint: { latest: { resources } } }, "dev.json");
      assert.deepEqual(recorded.get("base")?.triggers, ["template=a"], order);
    }
  });
});

describe("npm run pipeline -- plan (real CLI, no Pulumi CLI, no AWS)", () => {
  it("prints the plan and exits 0", async function () {
    this.timeout(60_000);
    const result = await execa("npm", ["run", "--silent", "pipeline", "--", "plan", "--stack", "prod", "--format", "markdown"], {
      cwd: ROOT,
      reject: false,
      env: { PULUMI_BACKEND_URL: `file://${tempDir("plan-state-")}` },
    });
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /\| `custom-prod` \| `jira` \| \*\*rebuild\*\* \| not built yet in this stack/);
  });

  it("names the stack file when it is not valid YAML", async () => {
    const root = projectCopy();
    appendFileSync(join(root, "Pulumi.dev.yaml"), "  jira-images:region: eu-west-2\n");
    const { code, stderr } = await plan(root);
    assert.equal(code, 1);
    assert.match(stderr, /^CONFIG_INVALID: stack dev: Pulumi\.dev\.yaml is not valid YAML: Map keys must be unique at line \d+/);
  });
});
