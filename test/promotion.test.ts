import { strict as assert } from "node:assert";
import { loadStackConfigFile } from "../src/config.ts";
import { stageInputs } from "../src/inputs-hash.ts";
import { describePromotion, resolvePromotion } from "../src/promotion.ts";
import { stackStages } from "../stages/index.ts";
import { PROJECT_ROOT, byType, commandOf, commandVars, fakeAmi, projectCopy, runProgram, sourceStackOutputs, type ProgramRun } from "./helpers/pulumi-mocks.ts";

const TAG = "aws:ec2/tag:Tag";
const REGION = "eu-west-1";
const dev = sourceStackOutputs("dev");
const devJira = dev.images.jira!.amis[REGION]!;
const devBase = dev.images.base!.amis[REGION]!;
const pin = (amiId?: string) => ({ "jira-images:promoted": JSON.stringify({ fromStack: "dev", stage: "jira", ...(amiId ? { amiId } : {}) }) });

/** Only the source stack was read: the program stopped before declaring anything. */
function assertNothingDeclared(run: ProgramRun): void {
  assert.deepEqual(run.references, ["dev"]);
  assert.deepEqual(run.resources.map((r) => r.name), []);
}

describe("promotion: prod takes jira from dev (runtime mocks)", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram({ stack: "prod", config: pin(devJira) });
    if (run.error) throw run.error;
  });

  it("reads dev's outputs through a StackReference and builds only custom-prod", () => {
    assert.deepEqual(run.references, ["dev"]);
    assert.deepEqual(byType(run, "command:local:Command").map((r) => r.name), ["custom-prod-build"]);
  });

  it("builds custom-prod on the pinned AMI, after tagging it", () => {
    const { inputs, dependencies } = commandOf(run, "custom-prod");
    assert.equal(commandVars(inputs.create).source_ami, devJira);
    assert.equal(inputs.triggers[5], `parentAmi=${devJira}`);
    for (const tag of byType(run, TAG)) assert.ok(dependencies.includes(tag.urn), `custom-prod waits for ${tag.name}`);
  });

  it("tags the promoted AMI and its ancestors as pinned by prod", () => {
    const tags = byType(run, TAG).map((t) => [t.inputs.resourceId, t.inputs.key, t.inputs.value]);
    assert.deepEqual(tags, [
      [devBase, "jira-images:pinned-by:prod", "prod"],
      [devJira, "jira-images:pinned-by:prod", "prod"],
    ]);
    const provider = byType(run, "pulumi:providers:aws")[0]!;
    assert.equal(provider.inputs.region, REGION, "the tags are set in prod's region");
  });

  it("chains dev's jira inputsHash into custom-prod's, so the lineage stays whole", () => {
    const root = projectCopy();
    const custom = stackStages(loadStackConfigFile(PROJECT_ROOT, "prod"), root).find((s) => s.name === "custom-prod")!;
    const expected = stageInputs(custom, root, dev.images.jira!.inputsHash).inputsHash;
    assert.equal(commandVars(commandOf(run, "custom-prod").inputs.create).inputs_hash, expected);
  });

  it("exports every stage: the promoted ones as dev's, with promotedFrom; custom-prod as built", () => {
    const amiIds = run.outputs.amiIds!.value as Record<string, string>;
    assert.deepEqual(amiIds, { base: devBase, jira: devJira, "custom-prod": fakeAmi("custom-prod", REGION) });
    const images = run.outputs.images!.value as Record<string, Record<string, unknown>>;
    assert.deepEqual(images.jira!.promotedFrom, { stack: "dev", amiId: devJira, tests: { passed: true, count: 7 } });
    assert.deepEqual(images.base!.promotedFrom, { stack: "dev", amiId: devBase, tests: { passed: true, count: 7 } });
    assert.equal(images.jira!.inputsHash, dev.images.jira!.inputsHash);
    assert.equal(images["custom-prod"]!.parentAmi, devJira);
    assert.equal(images["custom-prod"]!.promotedFrom, undefined);
    assert.equal((run.outputs.instances!.value as Array<{ ami: string }>)[0]!.ami, fakeAmi("custom-prod", REGION));
  });

  it("a new pin changes custom-prod's parent AMI trigger (a replace: custom-prod rebuilds)", async () => {
    const next = sourceStackOutputs("dev2");
    const moved = await runProgram({ stack: "prod", sources: { dev: next }, config: pin(next.images.jira!.amis[REGION]) });
    assert.equal(moved.error, undefined, String(moved.error));
    const [before, after] = [run, moved].map((r) => commandOf(r, "custom-prod").inputs.triggers as string[]);
    assert.deepEqual(before!.slice(0, 5), after!.slice(0, 5), "the content triggers stay");
    assert.notEqual(before![5], after![5]);
  });
});

describe("promotion: what a preview and an up without jira's files show (runtime mocks)", () => {
  it("a preview says what is promoted, and custom-prod's parent AMI trigger is known", async () => {
    const lines: string[] = [];
    const original = console.log;
    console.log = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
    let run: ProgramRun;
    try {
      run = await runProgram({ stack: "prod", preview: true, config: pin(devJira) });
    } finally {
      console.log = original;
    }
    assert.equal(run.error, undefined, String(run.error));
    assert.ok(lines.some((l) => l.includes(`jira: promoted from dev ${devJira} (tests passed, 7); custom-prod builds on it`)), lines.join("\n"));
    assert.equal(commandOf(run, "custom-prod").inputs.triggers[5], `parentAmi=${devJira}`, "the diff names the pin's AMI");
  });

  it("an up needs no Jira installer in the checkout: prod never builds jira", async () => {
    const run = await runProgram({ stack: "prod", projectRoot: projectCopy({ installer: false }), config: pin(devJira) });
    assert.equal(run.error, undefined, String(run.error));
    assert.deepEqual(byType(run, "command:local:Command").map((r) => r.name), ["custom-prod-build"]);
  });
});

describe("promotion: refused before anything is declared (runtime mocks)", () => {
  it("a pin without amiId: says to run promote", async () => {
    const run = await runProgram({ stack: "prod", promoted: false });
    assert.match(
      String(run.error),
      /PROMOTION_PENDING: Pulumi\.prod\.yaml: jira-images:promoted takes jira from dev, but no image is promoted yet \(no amiId\)\. Fix: run `npm run pipeline -- promote --from dev --to prod`/,
    );
    assert.deepEqual([run.references, run.resources], [[], []], "not even the stack reference");
  });

  it("an AMI dev never made", async () => {
    const run = await runProgram({ stack: "prod", config: pin("ami-0123456789abcdef0") });
    assert.match(String(run.error), new RegExp(`PROMOTION_AMI_UNKNOWN: Pulumi\\.prod\\.yaml: jira-images:promoted pins jira ami-0123456789abcdef0 from dev, but its jira image in eu-west-1 is ${devJira}`));
    assertNothingDeclared(run);
  });

  it("dev's image in another region than prod's", async () => {
    const sources = { dev: sourceStackOutputs("dev", ["us-east-1"]) };
    const ami = sources.dev.images.jira!.amis["us-east-1"]!;
    const copied = await runProgram({ stack: "prod", sources, config: pin(ami) });
    assert.match(String(copied.error), new RegExp(`PROMOTION_AMI_UNKNOWN: .* but that is its copy in us-east-1, not in this stack's region eu-west-1`));
    const other = await runProgram({ stack: "prod", sources, config: pin(devJira) });
    assert.match(String(other.error), /but it has no copy in this stack's region eu-west-1 \(it has: us-east-1\); add eu-west-1 to dev's amiRegions/);
    assertNothingDeclared(other);
  });

  it("an image whose tests did not pass, or that has no test result", async () => {
    const failed = await runProgram({ stack: "prod", sources: { dev: sourceStackOutputs("dev", [REGION], { passed: false, count: 7 }) }, config: pin(devJira) });
    assert.match(String(failed.error), /PROMOTION_UNTESTED: .*pins jira ami-[0-9a-f]+ from dev, whose image tests did not pass \(7 run\)\. Fix: rebuild jira in dev until its tests pass/);
    assertNothingDeclared(failed);
    const untested = await runProgram({ stack: "prod", sources: { dev: sourceStackOutputs("dev", [REGION], null) }, config: pin(devJira) });
    assert.match(String(untested.error), /PROMOTION_UNTESTED: .*whose image tests never ran \(no tests entry/);
  });

  it("a source stack without the outputs", async () => {
    const run = await runProgram({ stack: "prod", sources: {}, config: pin(devJira) });
    assert.match(String(run.error), /PROMOTION_SOURCE_MISSING: Pulumi\.prod\.yaml: jira-images:promoted takes jira from stack dev, which has no `images` output/);
    assertNothingDeclared(run);
  });

  it("a stage that is not above prod's own image", async () => {
    const run = await runProgram({ stack: "prod", config: { "jira-images:promoted": JSON.stringify({ fromStack: "dev", stage: "custom-prod", amiId: devJira }) } });
    assert.match(String(run.error), /PROMOTION_STAGE_INVALID: Pulumi\.prod\.yaml: jira-images:promoted takes stage custom-prod from dev, but custom-prod is this stack's own image.*Fix: set stage to one of base, jira/);
    assert.deepEqual(run.resources, []);
  });
});

describe("promotion: a stack without the key", () => {
  it("dev builds its whole chain and reads no other stack", async () => {
    const run = await runProgram({ stack: "dev" });
    assert.equal(run.error, undefined, String(run.error));
    assert.deepEqual(byType(run, "command:local:Command").map((r) => r.name), ["base-build", "jira-build", "custom-dev-build"]);
    assert.deepEqual([run.references.length, byType(run, TAG).length], [0, 0]);
    const images = run.outputs.images!.value as Record<string, Record<string, unknown>>;
    assert.equal(Object.values(images).some((i) => "promotedFrom" in i), false);
  });
});

describe("describePromotion", () => {
  it("says what is promoted from where and what builds on it", () => {
    const root = projectCopy();
    const stages = stackStages(loadStackConfigFile(PROJECT_ROOT, "prod"), root);
    const promotion = resolvePromotion({ pin: { fromStack: "dev", stage: "jira", amiId: devJira }, stack: "prod", region: REGION, stages, leaf: "custom-prod" }, dev.images);
    assert.deepEqual(promotion.builds.map((s) => s.name), ["custom-prod"]);
    assert.equal(describePromotion(promotion), `jira: promoted from dev ${devJira} (tests passed, 7); custom-prod builds on it when it changes`);
  });
});
