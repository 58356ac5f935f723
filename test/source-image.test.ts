import { strict as assert } from "node:assert";
import { loadStackConfigFile, parseStackConfig, readStackFileConfig, PROJECT } from "../src/config.ts";
import { JiraImagesError } from "../src/errors.ts";
import { SOURCE_IMAGE_TRIGGER, sourceImageTrigger } from "../src/inputs-hash.ts";
import { sourceImageLookupError, sourceImageQuery } from "../src/source-image.ts";
import type { ImageSummary } from "../src/pipeline.ts";
import { PROJECT_ROOT, commandOf, commandVars, runProgram, type ProgramRun } from "./helpers/pulumi-mocks.ts";

const ON = { [`${PROJECT}:resolveSourceAmi`]: "true" };
const GET_AMI = "aws:ec2/getAmi:getAmi";

function triggersOf(run: ProgramRun, stage: string): string[] {
  return commandOf(run, stage).inputs.triggers as string[];
}

describe("resolveSourceAmi: a newly published OS image rebuilds the chain (runtime mocks)", function () {
  it("off by default: no lookup, base keeps its six triggers and Packer's own filter (source_ami empty)", async function () {
    assert.equal(loadStackConfigFile(PROJECT_ROOT, "dev").resolveSourceAmi, false);
    const run = await runProgram({ stack: "dev" });
    assert.equal(run.error, undefined);
    assert.equal(run.calls.includes(GET_AMI), false);
    const triggers = triggersOf(run, "base");
    assert.deepEqual(triggers.map((t) => t.split("=")[0]), ["template", "workspace", "installers", "vars", "tests", "parentAmi"]);
    assert.equal(commandVars(commandOf(run, "base").inputs.create).source_ami, "");
  });

  it("on: looks up the newest image of the owners and name filter through the stack's provider", async function () {
    const run = await runProgram({ stack: "dev", config: ON, sourceImage: "ami-0123456789abcdef0" });
    assert.equal(run.error, undefined);
    const call = run.callArgs.find((c) => c.token === GET_AMI);
    assert.ok(call, "getAmi was invoked");
    assert.equal(call.inputs.mostRecent, true);
    assert.deepEqual(call.inputs.owners, ["amazon"]);
    assert.deepEqual((call.inputs.filters as Array<{ name: string; values: string[] }>).find((f) => f.name === "name")?.values, [
      "al2023-ami-2023.*-x86_64",
    ]);
  });

  it("on: base's trigger and its source_ami var carry the resolved image; only base gets the trigger", async function () {
    const run = await runProgram({ stack: "dev", config: ON, sourceImage: "ami-0123456789abcdef0" });
    assert.equal(run.error, undefined);
    assert.equal(triggersOf(run, "base").at(-1), "sourceImage=ami-0123456789abcdef0");
    const create = commandOf(run, "base").inputs.create as string;
    assert.equal(commandVars(create).source_ami, "ami-0123456789abcdef0");
    assert.equal(create.match(/--var source_ami=/g)?.length, 1, "one source_ami");
    for (const stage of ["jira", "custom-dev"]) assert.equal(triggersOf(run, stage).some((t) => t.startsWith(`${SOURCE_IMAGE_TRIGGER}=`)), false);
    const images = run.outputs.images!.value as Record<string, ImageSummary>;
    assert.deepEqual(images.base!.triggers, triggersOf(run, "base"));
  });

  it("a newly published image changes base's sourceImage trigger and nothing else of the stack's content triggers", async function () {
    const before = await runProgram({ stack: "dev", config: ON, sourceImage: "ami-0123456789abcdef0" });
    const after = await runProgram({ stack: "dev", config: ON, sourceImage: "ami-0fedcba9876543210" });
    const changed = (stage: string) =>
      triggersOf(after, stage).filter((t, i) => t !== triggersOf(before, stage)[i]).map((t) => t.split("=")[0]);
    assert.deepEqual(changed("base"), ["sourceImage"]);
    // jira rebuilds through its parentAmi (base's new AMI) in a real run; its own content is unchanged.
    assert.deepEqual(changed("jira").filter((name) => name !== "parentAmi"), []);
  });

  it("in a preview the resolved image is known: the diff names sourceImage with both AMIs", async function () {
    const run = await runProgram({ stack: "dev", preview: true, config: ON, sourceImage: "ami-0fedcba9876543210" });
    assert.equal(run.error, undefined);
    assert.equal(triggersOf(run, "base").at(-1), "sourceImage=ami-0fedcba9876543210");
  });

  it("a failed lookup fails the run with SOURCE_IMAGE_LOOKUP_FAILED instead of standing in another value", async function () {
    const run = await runProgram({ stack: "dev", preview: true, config: ON, sourceImage: new Error("Your query returned no results") });
    assert.ok(run.error instanceof Error);
    assert.match(String((run.error as Error).message), /SOURCE_IMAGE_LOOKUP_FAILED: stack dev: .*al2023-ami-2023\.\*-x86_64.* in eu-west-1 \(.+\)\. Nothing was rebuilt.*ec2:DescribeImages/s);
  });
});

describe("resolveSourceAmi: config and pure parts", function () {
  const raw = readStackFileConfig(PROJECT_ROOT, "dev");

  it("refuses resolveSourceAmi together with a pinned sourceAmi", function () {
    assert.throws(
      () => parseStackConfig({ ...raw, ...ON, [`${PROJECT}:sourceAmi`]: "ami-0123456789abcdef0" }, { stack: "dev", file: "Pulumi.dev.yaml" }),
      (e: unknown) => e instanceof JiraImagesError && e.code === "CONFIG_INVALID" && /resolveSourceAmi is true, but sourceAmi pins/.test(e.message),
    );
  });

  it("queries like packer/base's source_ami_filter and names the trigger", function () {
    const config = parseStackConfig({ ...raw, ...ON, [`${PROJECT}:sourceAmiOwners`]: '["123456789012"]' }, { stack: "dev", file: "Pulumi.dev.yaml" });
    assert.deepEqual(sourceImageQuery(config), {
      owners: ["123456789012"],
      mostRecent: true,
      filters: [
        { name: "name", values: ["al2023-ami-2023.*-x86_64"] },
        { name: "virtualization-type", values: ["hvm"] },
        { name: "root-device-type", values: ["ebs"] },
        { name: "architecture", values: ["x86_64"] },
      ],
    });
    assert.equal(sourceImageTrigger("ami-0123456789abcdef0"), "sourceImage=ami-0123456789abcdef0");
    assert.equal(sourceImageLookupError(config, new Error("denied\nmore")).code, "SOURCE_IMAGE_LOOKUP_FAILED");
  });
});
