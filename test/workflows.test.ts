import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
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
  needs?: string | string[];
  environment?: string | { name: string };
  permissions?: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress"?: boolean };
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
    assert.deepEqual(files.map((file) => file.slice(workflowDir.length + 1)).sort(), ["deploy.yml", "pull-request.yml"]);
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
    const preview = steps(job).find((s) => usesAction(s, "pulumi/actions"))!;
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
    assert.equal(awsJobs, 3, "the preview job (matrix dev/prod), up dev, up prod");
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
});
