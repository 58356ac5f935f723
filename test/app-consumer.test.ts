import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import type { ImageSummary } from "../src/pipeline.ts";
import { defineJiraApp, readJiraAppConfig, selectImage } from "../examples/app-consumer/app.ts";

const exampleDir = join(resolve(dirname(fileURLToPath(import.meta.url)), ".."), "examples", "app-consumer");

const AMI = {
  base: "ami-0a1b2c3d4e5f60718",
  jira: "ami-0b2c3d4e5f6071829",
  "custom-dev": "ami-0c3d4e5f607182930",
  "custom-prod": "ami-0d4e5f60718293041",
  "custom-prod-us": "ami-0e5f6071829304152",
};

/**
 * The images stack's outputs as the program exports them. Typed with the program's own
 * `ImageSummary`, so that a change of the exported shape breaks this test at type-check time.
 */
function imagesStackOutputs(env: "dev" | "prod") {
  const leaf = `custom-${env}` as const;
  const entry = (stage: string, amiId: string, parentStage: string | null, parentAmi: string, extra: Record<string, string> = {}): ImageSummary => ({
    stage,
    amiId,
    amis: { "eu-west-1": amiId, ...extra },
    regions: ["eu-west-1", ...Object.keys(extra)],
    parentStage,
    parentAmi,
    inputsHash: `sha256:${stage.length.toString(16).padStart(64, "0")}`,
    triggers: [`template=sha256:${"1".repeat(64)}`, `parentAmi=${parentAmi}`],
    logFile: `.packer-logs/${stage}/20250101T000000Z.log`,
  });
  const leafAmi = AMI[leaf];
  return {
    amiIds: { base: AMI.base, jira: AMI.jira, [leaf]: leafAmi },
    images: {
      base: entry("base", AMI.base, null, "none"),
      jira: entry("jira", AMI.jira, "base", AMI.base),
      [leaf]: entry(leaf, leafAmi, "jira", AMI.jira, env === "prod" ? { "us-east-1": AMI["custom-prod-us"] } : {}),
    },
  };
}

interface Recorded {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

/** Runs the example's program for a stack under Pulumi mocks with the stack's own config file. */
async function runExample(stack: "dev" | "prod") {
  const resources: Recorded[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        resources.push({ type: args.type, name: args.name, inputs: args.inputs });
        if (args.type === "pulumi:pulumi:StackReference") {
          const env = String(args.inputs.name).split("/").pop() as "dev" | "prod";
          return { id: String(args.inputs.name), state: { outputs: imagesStackOutputs(env), secretOutputNames: [] } };
        }
        return { id: `${args.name}-id`, state: { ...args.inputs, latestVersion: 1 } };
      },
      call: (args) => args.inputs,
    },
    "jira-app",
    stack,
    false,
  );
  // Pulumi.yaml defaults are not applied under mocks: the stack file is the config, as in a real run.
  const stackFile = parse(readFileSync(join(exampleDir, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(stackFile.config).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)])),
  );
  const app = defineJiraApp(readJiraAppConfig());
  const value = <T>(output: pulumi.Output<T>): Promise<T> => new Promise((resolvePromise) => output.apply(resolvePromise));
  const outputs = {
    amiId: await value(app.amiId),
    lineage: await value(app.lineage),
    launchTemplateId: await value(app.launchTemplateId),
    instanceId: await value(app.instanceId),
  };
  return { app, outputs, resources };
}

describe("examples/app-consumer under Pulumi mocks", () => {
  it("dev: reads organization/jira-images/dev and launches from custom-dev with IMDSv2 and lineage tags", async () => {
    const { app, outputs, resources } = await runExample("dev");
    const reference = resources.find((r) => r.type === "pulumi:pulumi:StackReference");
    assert.equal(reference?.inputs.name, "organization/jira-images/dev");
    assert.equal(app.imagesStack, "organization/jira-images/dev");
    assert.equal(outputs.amiId, AMI["custom-dev"]);
    assert.deepEqual(outputs.lineage, ["base", "jira", "custom-dev"]);

    const template = resources.find((r) => r.type === "aws:ec2/launchTemplate:LaunchTemplate");
    assert.ok(template, "a launch template");
    assert.equal(template.inputs.imageId, AMI["custom-dev"]);
    assert.equal(template.inputs.instanceType, "t3.large");
    assert.deepEqual(template.inputs.metadataOptions, { httpEndpoint: "enabled", httpTokens: "required" });
    const tags = template.inputs.tags as Record<string, string>;
    assert.equal(tags["jira-images:stage"], "custom-dev");
    assert.equal(tags["jira-images:lineage"], "base>jira>custom-dev");
    assert.equal(tags["jira-images:parent-ami"], AMI.jira);

    const instance = resources.find((r) => r.type === "aws:ec2/instance:Instance");
    assert.deepEqual(instance?.inputs.launchTemplate, { id: outputs.launchTemplateId, version: "1" });
    assert.equal(outputs.instanceId, "jira-dev-id");
  });

  it("prod: the prod stack reads the prod images and its own instance type", async () => {
    const { outputs, resources } = await runExample("prod");
    assert.equal(resources.find((r) => r.type === "pulumi:pulumi:StackReference")?.inputs.name, "organization/jira-images/prod");
    assert.equal(outputs.amiId, AMI["custom-prod"]);
    assert.equal(resources.find((r) => r.type === "aws:ec2/launchTemplate:LaunchTemplate")?.inputs.instanceType, "m6i.xlarge");
  });
});

describe("examples/app-consumer image selection", () => {
  const { amiIds, images } = imagesStackOutputs("prod");

  it("takes the copy in the app's region and walks the lineage up to the base image", () => {
    const selected = selectImage(amiIds, images, "prod", "us-east-1");
    assert.equal(selected.amiId, AMI["custom-prod-us"]);
    assert.deepEqual(selected.lineage, ["base", "jira", "custom-prod"]);
  });

  it("says which stage is missing, or which region to add, instead of launching a wrong image", () => {
    assert.throws(() => selectImage(amiIds, images, "dev", "eu-west-1"), /no stage custom-dev \(it exports base, jira, custom-prod\); is it the dev stack\?/);
    assert.throws(() => selectImage(amiIds, images, "prod", "ap-northeast-1"), /no copy in ap-northeast-1 .*add ap-northeast-1 to the images stack's amiRegions/);
    assert.throws(() => selectImage({ ...amiIds, jira: "jira.version" }, images, "prod", "eu-west-1"));
  });
});
