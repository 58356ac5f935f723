import { strict as assert } from "node:assert";
import { loadStackConfigFile, parseStackConfig, readStackFileConfig } from "../src/config.ts";
import {
  lineage,
  stageCommandName,
  stageOfCommandUrn,
  validateStages,
  type StageDefinition,
  type TemplateFs,
} from "../src/stages.ts";
import { declareStages, stackStages } from "../stages/index.ts";
import { PROJECT_ROOT } from "./helpers/pulumi-mocks.ts";

function stage(name: string, parent?: string, extra: Partial<StageDefinition> = {}): StageDefinition {
  return { name, parent, template: `packer/${name}`, workspace: [], installers: [], scanInputs: [], varFiles: [], vars: {}, ...extra };
}

/** Every template folder exists and holds a template, unless listed in `missing` / `empty`. */
function fakeFs(missing: string[] = [], empty: string[] = []): TemplateFs {
  return {
    isDirectory: (p) => !missing.includes(p),
    list: (p) => (empty.includes(p) ? ["README.md"] : ["main.pkr.hcl"]),
  };
}

function assertStageError(stages: StageDefinition[], code: string, message: RegExp, fs = fakeFs()): void {
  assert.throws(
    () => validateStages(stages, fs),
    (err: Error & { code?: string }) => err.code === code && message.test(err.message),
  );
}

describe("stage declarations", () => {
  for (const stack of ["dev", "prod"]) {
    it(`${stack}: base ▶ jira ▶ custom-${stack}, parents first, templates present in packer/`, () => {
      const config = loadStackConfigFile(PROJECT_ROOT, stack);
      const ordered = stackStages(config, PROJECT_ROOT);
      assert.deepEqual(ordered.map((s) => [s.name, s.parent]), [["base", undefined], ["jira", "base"], [`custom-${stack}`, "jira"]]);
      assert.deepEqual(lineage(ordered, `custom-${stack}`), ["base", "jira", `custom-${stack}`]);
      const custom = ordered[2]!;
      assert.deepEqual(custom.varFiles, [`packer/custom/${stack}.pkrvars.hcl`]);
      assert.equal(custom.vars.chef_node, stack);
      assert.deepEqual(ordered[1]!.installers, ["packer/files/atlassian-jira-software-9.12.15.tar.gz"]);
    });
  }

  it("base and jira are the same definitions in both stacks, only the custom stage differs", () => {
    const [dev, prod] = ["dev", "prod"].map((s) => declareStages(loadStackConfigFile(PROJECT_ROOT, s)));
    assert.equal(dev![1]!.template, prod![1]!.template);
    assert.deepEqual(dev![1]!.workspace, prod![1]!.workspace);
    assert.notEqual(dev![2]!.name, prod![2]!.name);
  });

  it("encrypts every stage's image with the stack's KMS keys, copy regions as a map", () => {
    const raw = {
      ...readStackFileConfig(PROJECT_ROOT, "prod"),
      "jira-images:kmsKeyId": "alias/jira-images",
      "jira-images:regionKmsKeyIds": '["eu-central-1=alias/jira-images-dr"]',
    };
    const stages = declareStages(parseStackConfig(raw, { stack: "prod", file: "Pulumi.prod.yaml" }));
    for (const { name, vars } of stages) {
      assert.equal(vars.kms_key_id, "alias/jira-images", name);
      assert.deepEqual(JSON.parse(vars.region_kms_key_ids as string), { "eu-central-1": "alias/jira-images-dr" }, name);
    }
  });

  it("orders stages parents first whatever the declaration order", () => {
    const ordered = validateStages([stage("c", "b"), stage("b", "a"), stage("a")], fakeFs());
    assert.deepEqual(ordered.map((s) => s.name), ["a", "b", "c"]);
  });

  it("rejects an unknown parent, naming it and the declared stages", () =>
    assertStageError([stage("base"), stage("jira", "bsae")], "STAGE_UNKNOWN_PARENT", /stage jira names parent bsae, which is not declared \(declared: base, jira\)/));
  it("rejects a cycle, showing it", () =>
    assertStageError([stage("a", "c"), stage("b", "a"), stage("c", "b")], "STAGE_CYCLE", /stages form a cycle: a -> c -> b -> a/));
  it("rejects a stage that is its own parent", () => assertStageError([stage("a", "a")], "STAGE_CYCLE", /a -> a/));
  it("rejects a duplicate name", () => assertStageError([stage("base"), stage("base")], "STAGE_DUPLICATE", /stage base is declared twice/));
  it("rejects a missing template folder", () =>
    assertStageError([stage("base"), stage("jira", "base")], "STAGE_TEMPLATE_MISSING", /stage jira: template folder packer\/jira does not exist/, fakeFs(["packer/jira"])));
  it("rejects a template folder without templates", () =>
    assertStageError([stage("base")], "STAGE_TEMPLATE_MISSING", /packer\/base holds no \*\.pkr\.hcl/, fakeFs([], ["packer/base"])));
  it("rejects a stage that sets a variable the pipeline or the runner sets (inputs_hash, manifest_path, run_id)", () => {
    for (const reserved of ["inputs_hash", "manifest_path", "run_id"]) {
      assertStageError([stage("a", undefined, { vars: { region: "eu-west-1", [reserved]: "x" } })], "STAGE_INVALID", new RegExp(`stage a sets ${reserved}, which the pipeline sets itself`));
    }
  });
  it("rejects a child stage that sets its own source_ami", () =>
    assertStageError([stage("a"), stage("b", "a", { vars: { source_ami: "ami-12345678" } })], "STAGE_INVALID", /stage b sets source_ami/));
  it("rejects an invalid stage name", () => assertStageError([stage("Base")], "STAGE_INVALID", /stage name "Base"/));
});

describe("stage command names", () => {
  const urn = (name: string) => `urn:pulumi:dev::jira-images::jira-images:pipeline:ImageStage$command:local:Command::${name}`;
  it("reads a stage back from its command's URN", () => {
    for (const name of ["base", "jira", "custom-dev"]) assert.equal(stageOfCommandUrn(urn(stageCommandName(name))), name);
  });
  it("names no stage for any other resource", () => {
    for (const name of ["jira", "-build", "jira-build-log", "x:y-build"]) assert.equal(stageOfCommandUrn(urn(name)), undefined);
  });
});
