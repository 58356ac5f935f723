import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const workflowDir = join(root, ".github", "workflows");

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Job {
  if?: string;
  needs?: string | string[];
  environment?: string | { name: string };
  permissions?: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress"?: boolean; queue?: string };
  strategy?: { matrix?: Record<string, unknown> };
  env?: Record<string, unknown>;
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  env?: Record<string, unknown>;
  jobs: Record<string, Job>;
}

function load(file: string): { text: string; workflow: Workflow } {
  const text = readFileSync(file, "utf8");
  // yaml.parse throws on syntax errors and duplicate keys: "valid YAML" is checked here.
  return { text, workflow: parse(text) as Workflow };
}

/** A job's steps with local composite actions (`uses: ./...`) expanded in place. */
function steps(job: Job): Step[] {
  return job.steps.flatMap((step) => {
    if (!step.uses?.startsWith("./")) return [step];
    const actionFile = join(root, step.uses, "action.yml");
    assert.ok(existsSync(actionFile), `${step.uses} has an action.yml`);
    const action = parse(readFileSync(actionFile, "utf8")) as { runs: { using: string; steps: Step[] } };
    assert.equal(action.runs.using, "composite");
    return [step, ...action.runs.steps];
  });
}

const usesAction = (step: Step, action: string): boolean => step.uses?.split("@")[0] === action;
/** Every `run:` script of a job, shell line continuations joined. */
const runs = (job: Job): string =>
  steps(job)
    .map((step) => step.run ?? "")
    .join("\n")
    .replace(/\\\n\s*/g, " ");
const envName = (job: Job): string | undefined => (typeof job.environment === "string" ? job.environment : job.environment?.name);

const prFile = join(workflowDir, "pull-request.yml");
const deployFile = join(workflowDir, "deploy.yml");

describe("GitHub Actions workflows", () => {
  const files = readdirSync(workflowDir).filter((file) => /\.ya?ml$/.test(file)).map((file) => join(workflowDir, file));

  it("are valid YAML with jobs whose needs exist", () => {
    assert.deepEqual(files.map((file) => file.slice(workflowDir.length + 1)).sort(), ["deploy.yml", "os-image-check.yml", "pull-request.yml"]);
    for (const file of files) {
      const { workflow } = load(file);
      assert.ok(workflow.on && workflow.jobs, `${file}: on and jobs`);
      for (const [name, job] of Object.entries(workflow.jobs)) {
        for (const need of [job.needs ?? []].flat()) assert.ok(workflow.jobs[need], `${file}: ${name} needs unknown job ${need}`);
        assert.ok(Array.isArray(job.steps) && job.steps.length > 0, `${file}: ${name} has steps`);
      }
    }
  });

  it("pull requests: packer init, fmt -check and validate of every stage and environment", () => {
    const { workflow } = load(prFile);
    assert.ok(workflow.on.pull_request !== undefined, "runs on pull_request");
    const packerJob = Object.values(workflow.jobs).find((job) => steps(job).some((step) => usesAction(step, "hashicorp/setup-packer")));
    assert.ok(packerJob, "a job installs Packer with hashicorp/setup-packer");
    const script = runs(packerJob);
    assert.match(script, /packer init packer\//);
    assert.match(script, /packer fmt -check\b.*packer\//);
    for (const target of ["packer/base", "packer/jira", "packer/custom"]) {
      assert.match(script, new RegExp(`packer validate .*${target}\\b`), target);
    }
    assert.match(script, /for env in dev prod/);
    assert.match(script, /packer\/custom\/\$\{env\}\.pkrvars\.hcl/);
  });

  it("pull requests: run the project's tests", () => {
    const { workflow } = load(prFile);
    assert.ok(Object.values(workflow.jobs).some((job) => /(^|\s)\.ci\/run\b|npm test/.test(runs(job))));
  });

  it("pull requests: pulumi/actions preview with comment-on-pr and diff for dev and prod, after the checks", () => {
    const { workflow } = load(prFile);
    const [name, job] = Object.entries(workflow.jobs).find(([, j]) => steps(j).some((s) => usesAction(s, "pulumi/actions") && s.with?.command === "preview"))!;
    assert.ok(job, "a preview job");
    const preview = steps(job).find((s) => usesAction(s, "pulumi/actions") && s.with?.command === "preview")!;
    assert.equal(preview.with?.["comment-on-pr"], true);
    assert.equal(preview.with?.diff, true);
    assert.equal(preview.with?.["stack-name"], "${{ matrix.stack }}");
    assert.deepEqual(job.strategy?.matrix?.stack, ["dev", "prod"]);
    assert.equal(job.permissions?.["pull-requests"], "write", `${name} may comment`);
    const needs = [job.needs ?? []].flat();
    assert.ok(needs.length >= 2, "preview waits for the Packer checks and the tests");
  });

  it("pull requests: the offline plan's Markdown is generated and posted", () => {
    const { workflow } = load(prFile);
    const job = Object.values(workflow.jobs).find((j) => /pipeline -- plan .*--format markdown/.test(runs(j)));
    assert.ok(job, "a step runs `npm run pipeline -- plan ... --format markdown`");
    const planOut = /--format markdown > "([^"]+)"/.exec(runs(job))?.[1];
    assert.ok(planOut, "the Markdown goes to a file");
    const post = steps(job).find((s) => usesAction(s, "marocchino/sticky-pull-request-comment"));
    assert.ok(post, "the plan is posted as a (sticky) PR comment");
    assert.equal(String(post.with?.path).replace("${{ runner.temp }}", "$RUNNER_TEMP"), planOut);
  });

  it("push to main: up dev, then prod behind the prod environment, never cancelled half-way", () => {
    const { workflow } = load(deployFile);
    const push = workflow.on.push as { branches?: string[] } | undefined;
    assert.deepEqual(push?.branches, ["main"]);
    const upJobs = Object.entries(workflow.jobs).map(([name, job]) => ({
      name,
      job,
      stack: steps(job).find((s) => usesAction(s, "pulumi/actions") && s.with?.command === "up")?.with?.["stack-name"],
    }));
    const dev = upJobs.find((j) => j.stack === "dev");
    const prod = upJobs.find((j) => j.stack === "prod");
    assert.ok(dev && prod, "up jobs for dev and prod");
    assert.equal(envName(prod.job), "prod", "prod runs in the prod environment (required reviewers)");
    assert.ok([prod.job.needs ?? []].flat().includes(dev.name), "prod waits for dev");
    for (const { name, job } of [dev, prod]) {
      assert.equal(job.concurrency?.["cancel-in-progress"], false, `${name}: an up is never cancelled by a newer push`);
      const checkout = steps(job).find((s) => usesAction(s, "actions/checkout"));
      assert.equal(checkout?.with?.lfs, true, `${name}: installers are LFS objects`);
      assert.ok(steps(job).some((s) => usesAction(s, "hashicorp/setup-packer")), `${name}: Packer is installed`);
    }
  });

  it("AWS access is OIDC only: role-to-assume with id-token: write, never access keys", () => {
    let awsJobs = 0;
    for (const file of files) {
      const { workflow } = load(file);
      for (const [name, job] of Object.entries(workflow.jobs)) {
        const aws = steps(job).filter((s) => usesAction(s, "aws-actions/configure-aws-credentials"));
        for (const step of aws) {
          awsJobs++;
          assert.match(String(step.with?.["role-to-assume"]), /^\$\{\{ vars\.[A-Z_]+ \}\}$/, `${file} ${name}: role ARN from a variable`);
          assert.equal(step.with?.["aws-access-key-id"], undefined);
          assert.equal(step.with?.["aws-secret-access-key"], undefined);
          const permissions = job.permissions ?? workflow.permissions;
          assert.equal(permissions?.["id-token"], "write", `${file} ${name}: id-token: write`);
        }
      }
    }
    assert.equal(awsJobs, 4, "the preview job (matrix dev/prod), up dev, up prod, the weekly OS image check");
  });

  it("no secret is written inline and every action is pinned", () => {
    // `id-token` is a permission name (its value is write/read), not a credential.
    const sensitive = /^(?!id-token$).*(secret|token|passphrase|password|access[-_]?key)/i;
    for (const file of [...files, join(root, ".github", "actions", "setup", "action.yml")]) {
      const text = readFileSync(file, "utf8");
      assert.doesNotMatch(text, /\b(AKIA|ASIA)[A-Z0-9]{16}\b/, `${file}: no AWS access key id`);
      assert.doesNotMatch(text, /AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID/, `${file}: no static AWS keys`);
      assert.doesNotMatch(text, /arn:aws:iam::\d{12}:/, `${file}: account-specific ARNs live in repository variables`);
      const visit = (value: unknown, key: string): void => {
        if (value !== null && typeof value === "object") {
          for (const [k, v] of Object.entries(value)) visit(v, k);
        } else if (sensitive.test(key) && typeof value === "string") {
          assert.match(value, /^\$\{\{ (secrets\.[A-Z_]+|github\.token) \}\}$/, `${file}: ${key} comes from secrets`);
        }
      };
      visit(parse(text), "");
      for (const match of text.matchAll(/uses:\s*([^\s#]+)/g)) {
        const ref = match[1]!;
        if (ref.startsWith("./")) continue;
        assert.match(ref, /@(v\d+(\.\d+)*|[0-9a-f]{40})$/, `${file}: ${ref} is pinned to a release or commit`);
      }
    }
  });

  it("every run script passes shellcheck (bash)", () => {
    for (const file of files) {
      for (const [name, job] of Object.entries(load(file).workflow.jobs)) {
        for (const step of steps(job).filter((s) => s.run)) {
          // GitHub substitutes ${{ ... }} before the shell runs; a plain word stands in for it.
          const script = step.run!.replace(/\$\{\{[^}]*\}\}/g, "GITHUB_EXPRESSION");
          const result = spawnSync("shellcheck", ["--shell=bash", "-"], { input: script, encoding: "utf8" });
          if (result.error) assert.fail(`shellcheck is needed for this test: apt-get install -y shellcheck (${result.error.message})`);
          assert.equal(result.status, 0, `${file} ${name} "${step.name ?? step.run}":\n${result.stdout}`);
        }
      }
    }
  });

  it("deploy: upsert creates a stack on a new backend; one environment and one role variable per stack; main only", () => {
    const { workflow } = load(deployFile);
    const ups = Object.entries(workflow.jobs).filter(([, job]) => steps(job).some((s) => usesAction(s, "pulumi/actions")));
    assert.equal(ups.length, 2);
    for (const [name, job] of ups) {
      const up = steps(job).find((s) => usesAction(s, "pulumi/actions"))!;
      const stack = String(up.with?.["stack-name"]);
      assert.equal(up.with?.upsert, true, `${name}: the first up on a new backend must create the stack`);
      assert.equal(envName(job), stack, `${name}: runs in the ${stack} environment (OIDC subject environment:${stack})`);
      const aws = steps(job).find((s) => usesAction(s, "aws-actions/configure-aws-credentials"))!;
      assert.equal(aws.with?.["role-to-assume"], `\${{ vars.AWS_DEPLOY_ROLE_ARN_${stack.toUpperCase()} }}`, `${name}: its own deploy role`);
      assert.equal(job.if, "github.ref == 'refs/heads/main'", `${name}: a dispatch from another branch deploys nothing`);
      assert.equal(job.env?.PULUMI_CONFIG_PASSPHRASE, "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
    }
  });

  it("deploy: no up is cancelled by a newer push, running or waiting, and the README says so", () => {
    const { workflow } = load(deployFile);
    for (const [name, job] of Object.entries(workflow.jobs)) {
      assert.equal(job.concurrency?.["cancel-in-progress"], false, name);
      // Without it GitHub cancels the one waiting job of the group when a newer one is queued.
      assert.equal(job.concurrency?.queue, "max", `${name}: waiting ups queue instead of being replaced`);
      assert.match(job.concurrency?.group ?? "", /^pulumi-up-(dev|prod)$/, `${name}: one group per stack, not per run`);
    }
    const readme = readFileSync(join(root, "README.md"), "utf8");
    assert.match(readme, /No `up` is cancelled by a newer push/);
    assert.match(readme, /`queue: max`/);
  });

  it("pull requests: the deploy passphrase never reaches them; the preview role's OIDC subject stays pull_request", () => {
    const { text, workflow } = load(prFile);
    assert.doesNotMatch(text, /secrets\.PULUMI_CONFIG_PASSPHRASE/);
    for (const [name, job] of Object.entries(workflow.jobs)) {
      assert.equal(job.environment, undefined, `${name}: an environment would change the OIDC subject and expose its secrets`);
    }
    const preview = Object.values(workflow.jobs).find((job) => steps(job).some((s) => usesAction(s, "aws-actions/configure-aws-credentials")))!;
    assert.equal(preview.if, "github.event.pull_request.head.repo.full_name == github.repository", "forks get no OIDC token: no preview");
    const aws = steps(preview).find((s) => usesAction(s, "aws-actions/configure-aws-credentials"))!;
    assert.equal(aws.with?.["role-to-assume"], "${{ vars.AWS_PREVIEW_ROLE_ARN }}");
    // The preview and the plan read only the scratch copy of the state.
    const scratch = "file://${{ runner.temp }}/preview-state";
    const pulumiPreview = steps(preview).find((s) => usesAction(s, "pulumi/actions") && s.with?.command === "preview")!;
    assert.equal(pulumiPreview.env?.PULUMI_BACKEND_URL, scratch);
    assert.equal(pulumiPreview.with?.["cloud-url"], scratch);
    assert.equal(pulumiPreview.with?.upsert, undefined, "the scratch stack exists: the copy step made it");
    const plan = steps(preview).find((s) => /pipeline -- plan/.test(s.run ?? ""))!;
    assert.equal(plan.env?.PULUMI_BACKEND_URL, scratch);
  });

  it("every action in a job that can mint AWS credentials is pinned to a full commit SHA, with its release in a comment", () => {
    const setupText = readFileSync(join(root, ".github", "actions", "setup", "action.yml"), "utf8");
    let checked = 0;
    for (const file of files) {
      const { text, workflow } = load(file);
      for (const [name, job] of Object.entries(workflow.jobs)) {
        if (job.permissions?.["id-token"] !== "write") continue;
        const local = job.steps.filter((s) => s.uses?.startsWith("./")).map((s) => s.uses!);
        for (const step of steps(job).filter((s) => s.uses && !s.uses.startsWith("./"))) {
          checked++;
          assert.match(step.uses!, /^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40}$/, `${file} ${name}: ${step.uses} is pinned to a commit SHA`);
          const source = local.length > 0 && !text.includes(step.uses!) ? setupText : text;
          assert.match(source, new RegExp(`uses: ${step.uses!.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")} # v\\d+\\.\\d+\\.\\d+`), `${step.uses}: the release is named`);
        }
      }
    }
    assert.ok(checked >= 10, `checked ${checked} actions`);
  });

  describe("the preview's state copy (a stand-in pulumi)", function () {
    this.timeout(20_000);
    const script = (): string => {
      const job = load(prFile).workflow.jobs["preview"]!;
      return job.steps.find((s) => s.name?.startsWith("copy the stack's state"))!.run!;
    };

    function runCopy(stacks: string[], exported: object) {
      const dir = mkdtempSync(join(tmpdir(), "preview-copy-"));
      const bin = join(dir, "bin");
      mkdirSync(bin);
      const record = join(dir, "record");
      // Records each call with the backend and whether a passphrase was set; `stack export` writes $EXPORTED.
      writeFileSync(
        join(bin, "pulumi"),
        [
          "#!/bin/sh",
          'printf \'%s|%s|%s\\n\' "$*" "$PULUMI_BACKEND_URL" "${PULUMI_CONFIG_PASSPHRASE:+set}" >> "$RECORD"',
          'case "$1 $2" in',
          '  "stack ls") printf \'%s\\n\' "$STACKS" ;;',
          '  "stack export") cp "$EXPORTED" "$6" ;;',
          '  "stack import") cp "$6" "$IMPORTED" ;;',
          "esac",
        ].join("\n"),
      );
      chmodSync(join(bin, "pulumi"), 0o755);
      writeFileSync(join(dir, "exported.json"), JSON.stringify(exported));
      copyFileSync(join(root, "Pulumi.dev.yaml"), join(dir, "Pulumi.dev.yaml"));
      writeFileSync(join(dir, "Pulumi.dev.yaml"), `encryptionsalt: v1:deploy-salt\n${readFileSync(join(dir, "Pulumi.dev.yaml"), "utf8")}`);
      const env = {
        PATH: `${bin}:${process.env.PATH}`,
        STACK: "dev",
        RUNNER_TEMP: dir,
        GITHUB_ENV: join(dir, "github-env"),
        PULUMI_BACKEND_URL: "s3://state-bucket",
        SCRATCH_BACKEND: `file://${dir}/preview-state`,
        RECORD: record,
        STACKS: JSON.stringify(stacks.map((name) => ({ name }))),
        EXPORTED: join(dir, "exported.json"),
        IMPORTED: join(dir, "imported.json"),
      };
      const result = spawnSync("bash", ["--norc", "--noprofile", "-e", "-c", script()], { cwd: dir, env: { ...env, HOME: dir }, encoding: "utf8" });
      const calls = existsSync(record) ? readFileSync(record, "utf8").trim().split("\n") : [];
      return { dir, result, calls };
    }

    const deployment = { version: 3, deployment: { secrets_providers: { type: "passphrase", state: { salt: "v1:deploy-salt" } }, resources: [{ urn: "urn:a" }] } };

    it("exports from the real backend without a passphrase and imports into the scratch one under a throwaway", () => {
      const { dir, result, calls } = runCopy(["dev"], deployment);
      assert.equal(result.status, 0, result.stderr + result.stdout);
      const scratch = `file://${dir}/preview-state`;
      assert.deepEqual(
        calls.map((c) => c.split("|").slice(0, 2).join("|")),
        [`stack init dev|${scratch}`, "stack ls --json|s3://state-bucket", `stack export --stack dev --file ${dir}/export.json|s3://state-bucket`, `stack import --stack dev --file ${dir}/import.json|${scratch}`],
      );
      const passphrase = /^PULUMI_CONFIG_PASSPHRASE=([0-9a-f]{64})$/m.exec(readFileSync(join(dir, "github-env"), "utf8"))?.[1];
      assert.ok(passphrase, "a random passphrase for the later steps");
      assert.match(result.stdout, new RegExp(`::add-mask::${passphrase}`));
      const imported = JSON.parse(readFileSync(join(dir, "imported.json"), "utf8"));
      assert.equal(imported.deployment.secrets_providers, undefined, "the copy drops the deploy passphrase's salt");
      assert.deepEqual(imported.deployment.resources, [{ urn: "urn:a" }]);
      assert.doesNotMatch(readFileSync(join(dir, "Pulumi.dev.yaml"), "utf8"), /encryptionsalt/);
    });

    it("previews from an empty state when the stack does not exist yet", () => {
      const { result, calls } = runCopy(["prod"], deployment);
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /stack dev does not exist on the backend yet/);
      assert.deepEqual(calls.map((c) => c.split(" ").slice(0, 2).join(" ")), ["stack init", "stack ls"]);
    });

    it("stops with a clear error when the state holds secret values", () => {
      const secret = { ...deployment, deployment: { ...deployment.deployment, resources: [{ urn: "urn:a", outputs: { p: { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", ciphertext: "v1:x" } } }] } };
      const { result, calls } = runCopy(["dev"], secret);
      assert.equal(result.status, 1);
      assert.match(result.stdout, /::error::stack dev's state holds secret values/);
      assert.ok(!calls.some((c) => c.startsWith("stack import")));
    });
  });
});
