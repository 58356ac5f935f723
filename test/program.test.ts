import { readFileSync } from "node:fs";
import { strict as assert } from "node:assert";
import { loadStackConfigFile } from "../src/config.ts";
import { INSTANCE_ROLE_BOUNDARY, SSM_POLICY_ARN } from "../src/instances.ts";
import { REEMIT_PREVIOUS_RESULT, type ImageSummary } from "../src/pipeline.ts";
import {
  PROJECT_ROOT,
  byType,
  projectCopy,
  commandOf,
  commandVars,
  fakeAmi,
  runProgram,
  runnerStdout,
  type ProgramRun,
} from "./helpers/pulumi-mocks.ts";

const INSTANCE = "aws:ec2/instance:Instance";
const SG = "aws:ec2/securityGroup:SecurityGroup";

for (const stack of ["dev", "prod"] as const) {
  describe(`program, stack ${stack} (runtime mocks)`, () => {
    const config = loadStackConfigFile(PROJECT_ROOT, stack);
    const region = config.region;
    const custom = `custom-${stack}`;
    let run: ProgramRun;

    before(async () => {
      run = await runProgram({ stack });
      if (run.error) throw run.error;
    });

    it("declares one local.Command per stage: base ▶ jira ▶ custom", () => {
      assert.deepEqual(byType(run, "command:local:Command").map((r) => r.name).sort(), ["base-build", `${custom}-build`, "jira-build"].sort());
    });

    it("runs the stage runner directly (exec node) by its project-relative path, no `dir`; an update only re-emits the result", () => {
      for (const stage of ["base", "jira", custom]) {
        const { inputs } = commandOf(run, stage);
        assert.ok(inputs.create.startsWith(`exec node --import tsx src/runner/cli.ts --stage ${stage} --template packer/`), inputs.create);
        assert.equal("dir" in inputs, false, "the provider runs it in the project root");
        assert.equal(inputs.update, REEMIT_PREVIOUS_RESULT);
        assert.equal(inputs.addPreviousOutputInEnv, true);
        assert.equal(inputs.logging, "stderr");
        assert.match(inputs.create, /--timeout 7200$/);
      }
    });

    it(`${config.deregisterReplacedImages ? "removes" : "keeps"} a stage's old images when it is rebuilt or destroyed`, () => {
      assert.equal(config.deregisterReplacedImages, stack === "dev", "dev removes old images, prod keeps them");
      for (const stage of ["base", "jira", custom]) {
        const expected = stack === "dev" ? `exec node --import tsx src/runner/deregister-cli.ts --stage ${stage}` : undefined;
        assert.equal(commandOf(run, stage).inputs.delete, expected, stage);
      }
    });

    it("passes exactly the contract's variables to each stage", () => {
      const common = ["ami_regions", "build_instance_type", "inputs_hash", "kms_key_id", "region", "region_kms_key_ids", "ssh_username", "stage"];
      const keys = (stage: string) => Object.keys(commandVars(commandOf(run, stage).inputs.create)).sort();
      assert.deepEqual(keys("base"), [...common, "source_ami", "source_ami_name_filter", "source_ami_owners"].sort());
      assert.deepEqual(keys("jira"), [...common, "jira_version", "source_ami"].sort());
      assert.deepEqual(keys(custom), [...common, "chef_node", "environment", "jira_version", "source_ami"].sort());
      const base = commandVars(commandOf(run, "base").inputs.create);
      assert.equal(base.source_ami, "");
      assert.equal(base.source_ami_owners, '["amazon"]');
      assert.equal(base.ami_regions, JSON.stringify(config.amiRegions));
      assert.equal(base.kms_key_id, "");
      assert.equal(base.region_kms_key_ids, "{}");
      const customVars = commandVars(commandOf(run, custom).inputs.create);
      assert.equal(customVars.chef_node, stack);
      assert.equal(customVars.environment, stack);
    });

    it("hands each parent's AMI in the build region to its child (create, triggers, dependsOn)", () => {
      for (const [child, parent] of [["jira", "base"], [custom, "jira"]] as const) {
        const parentAmi = fakeAmi(parent, region);
        const { inputs, dependencies } = commandOf(run, child);
        assert.equal(commandVars(inputs.create).source_ami, parentAmi);
        assert.equal(inputs.triggers[4], `parentAmi=${parentAmi}`);
        assert.ok(dependencies.includes(commandOf(run, parent).urn), `${child} depends on ${parent}'s command`);
      }
      assert.equal(commandOf(run, "base").inputs.triggers[4], "parentAmi=none");
    });

    it("names every trigger", () => {
      for (const stage of ["base", "jira", custom]) {
        const names = commandOf(run, stage).inputs.triggers.map((t: string) => t.slice(0, t.indexOf("=")));
        assert.deepEqual(names, ["template", "workspace", "installers", "vars", "parentAmi"]);
      }
    });

    it("passes the installer and the workspace to jira, the var file and workspace to custom", () => {
      const jira = commandOf(run, "jira").inputs.create;
      assert.match(jira, / --input packer\/chef --input packer\/files --require packer\/files\/atlassian-jira-software-9\.12\.15\.tar\.gz /);
      const customCreate = commandOf(run, custom).inputs.create;
      assert.match(customCreate, new RegExp(` --var-file packer/custom/${stack}\\.pkrvars\\.hcl --input packer/chef `));
      assert.doesNotMatch(commandOf(run, "base").inputs.create, /--input|--require|--var-file/);
    });

    it("exports amiIds (every stage, build region) and images with their lineage", () => {
      const amiIds = run.outputs.amiIds!.value as Record<string, string>;
      assert.deepEqual(amiIds, { base: fakeAmi("base", region), jira: fakeAmi("jira", region), [custom]: fakeAmi(custom, region) });
      const images = run.outputs.images!.value as Record<string, ImageSummary>;
      assert.deepEqual(images.jira!.parentStage, "base");
      assert.equal(images.jira!.parentAmi, amiIds.base);
      assert.equal(images[custom]!.parentAmi, amiIds.jira);
      assert.equal(images.base!.parentStage, null);
      assert.deepEqual(images[custom]!.regions, [region, ...config.amiRegions].sort());
      assert.match(images[custom]!.inputsHash, /^sha256:[0-9a-f]{64}$/);
      assert.equal(images[custom]!.logFile, `.packer-logs/${custom}/packer-20250101T000000Z.log`);
      assert.equal(commandVars(commandOf(run, custom).inputs.create).inputs_hash, images[custom]!.inputsHash);
    });

    it(`launches ${config.instanceCount} instance(s) from the ${custom} AMI: IMDSv2, encrypted, private, SSM`, () => {
      const instances = byType(run, INSTANCE);
      assert.equal(instances.length, config.instanceCount);
      for (const { inputs } of instances) {
        assert.equal(inputs.ami, fakeAmi(custom, region));
        assert.equal(inputs.instanceType, config.instanceType);
        assert.equal(inputs.metadataOptions.httpTokens, "required");
        assert.equal(inputs.rootBlockDevice.encrypted, true);
        assert.equal(inputs.rootBlockDevice.volumeSize, config.rootVolumeSizeGb);
        assert.equal(inputs.associatePublicIpAddress, false);
        assert.equal(inputs.keyName, undefined);
        assert.equal(inputs.iamInstanceProfile, `${stack}-instance-profile`);
        assert.ok(Buffer.byteLength(inputs.userData) <= 1024, `user data is ${Buffer.byteLength(inputs.userData)} bytes`);
        assert.match(inputs.userData, new RegExp(`JIRA_ENVIRONMENT=${stack}\\n`));
        assert.equal(inputs.userDataReplaceOnChange, true);
      }
      const attachment = byType(run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment");
      assert.deepEqual(attachment.map((a) => a.inputs.policyArn), [SSM_POLICY_ARN]);
      // The deploy role may create roles only with this boundary (docs/iam/deploy-<env>-policy.json).
      const [instanceRole, ...otherRoles] = byType(run, "aws:iam/role:Role");
      assert.equal(otherRoles.length, 0);
      assert.equal(instanceRole!.inputs.permissionsBoundary, `arn:aws:iam::111122223333:policy/${INSTANCE_ROLE_BOUNDARY}`);
      const [dbSecret] = byType(run, "aws:iam/rolePolicy:RolePolicy");
      assert.deepEqual(
        JSON.parse(dbSecret!.inputs.policy).Statement.map((s: { Action: string[]; Resource: string }) => [s.Action[0], s.Resource]),
        [
          ["ssm:GetParameter", `arn:aws:ssm:${region}:*:parameter/jira-images/${stack}/*`],
          ["secretsmanager:GetSecretValue", `arn:aws:secretsmanager:${region}:*:secret:jira-images/${stack}/*`],
        ],
      );
      const role = readFileSync(new URL(`../packer/chef/roles/jira-${stack}.json`, import.meta.url), "utf8");
      const passwordName = /"password_name":\s*"\/?([^"]+)"/.exec(role)?.[1];
      assert.ok(passwordName?.startsWith(`jira-images/${stack}/`), `the Chef role's password name ${passwordName} is outside the policy`);
    });

    it("tags instances with the stage lineage and the stack's tags", () => {
      const [first] = byType(run, INSTANCE);
      assert.deepEqual(
        { ...first!.inputs.tags, InputsHash: "…" },
        {
          ...config.tags,
          Name: `jira-${stack}-1`,
          Project: "jira-images",
          Stack: stack,
          Environment: stack,
          Stage: custom,
          StageLineage: `base>jira>${custom}`,
          InputsHash: "…",
          ManagedBy: "pulumi",
        },
      );
      assert.equal(first!.inputs.tags.InputsHash, (run.outputs.images!.value as Record<string, ImageSummary>)[custom]!.inputsHash);
    });

    it("opens only Jira's port to the allowed CIDRs, and HTTPS and the database outbound", () => {
      const [sg] = byType(run, SG);
      assert.deepEqual(
        sg!.inputs.ingress.map((r: { fromPort: number; toPort: number; cidrBlocks: string[] }) => [r.fromPort, r.toPort, r.cidrBlocks]),
        [[8080, 8080, config.allowedCidrs]],
      );
      assert.deepEqual(sg!.inputs.egress.map((r: { fromPort: number; cidrBlocks: string[] }) => [r.fromPort, r.cidrBlocks]), [
        [443, ["0.0.0.0/0"]],
        [5432, config.databaseCidrs],
      ]);
      assert.equal(sg!.inputs.vpcId, "vpc-0d0e0f0a0b0c0d0e0");
    });

    it("spreads instances over the default VPC's subnets and exports them", () => {
      const instances = run.outputs.instances!.value as Array<{ name: string; id: string; privateIp: string; ami: string; subnetId: string }>;
      assert.equal(instances.length, config.instanceCount);
      assert.deepEqual(instances.map((i) => i.subnetId), ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"].slice(0, config.instanceCount));
      for (const i of instances) {
        assert.match(i.privateIp, /^10\.0\.1\.\d+$/);
        assert.equal(i.ami, fakeAmi(custom, region));
      }
    });

    it("uses an AWS provider for the stack's region", () => {
      const [provider] = byType(run, "pulumi:providers:aws");
      assert.equal(provider!.inputs.region, region);
    });
  });
}

describe("program state is independent of the checkout's folder (runtime mocks)", () => {
  for (const stack of ["dev", "prod"]) {
    it(`${stack}: two checkouts in different folders declare the same resources with the same inputs`, async () => {
      const [first, second] = [projectCopy(), projectCopy()];
      assert.notEqual(first, second);
      // One program run at a time: the runtime mocks are global.
      const a = await runProgram({ stack, projectRoot: first });
      const b = await runProgram({ stack, projectRoot: second });
      assert.equal(a.error, undefined, String(a.error));
      assert.equal(b.error, undefined, String(b.error));
      const shape = (run: ProgramRun) => run.resources.map((r) => ({ type: r.type, urn: r.urn, inputs: r.inputs }));
      assert.ok(a.resources.length > 10, `only ${a.resources.length} resources`);
      assert.deepEqual(shape(a), shape(b));
      const text = JSON.stringify(shape(a));
      for (const folder of [first, second, PROJECT_ROOT]) assert.equal(text.includes(folder), false, `an input names ${folder}`);
    });
  }
});

describe("program edge cases (runtime mocks)", () => {
  it("preview: declares everything with unknown AMIs, parses no stdout, keeps trigger names readable", async () => {
    const run = await runProgram({ stack: "dev", preview: true });
    assert.equal(run.error, undefined);
    assert.equal(byType(run, "command:local:Command").length, 3);
    assert.equal(byType(run, INSTANCE).length, 1);
    for (const key of ["amiIds", "images", "instances"]) assert.equal(run.outputs[key]!.known, false, key);
    const jira = commandOf(run, "jira").inputs;
    assert.match(jira.triggers[0], /^template=sha256:/);
    assert.match(jira.triggers[3], /^vars=sha256:/);
    assert.notEqual(typeof jira.triggers[4], "string", "the parent AMI is not known in a preview");
    assert.equal(typeof byType(run, INSTANCE)[0]!.inputs.ami, "object");
  });

  it("picks the build region's AMI by name even when another region sorts first", async () => {
    const run = await runProgram({ stack: "prod" });
    const stdout = JSON.parse(runnerStdout("base", ["eu-west-1", "eu-central-1"]));
    assert.equal(stdout.region, "eu-central-1", "the runner's first region is the alphabetically first");
    assert.equal(commandVars(commandOf(run, "jira").inputs.create).source_ami, fakeAmi("base", "eu-west-1"));
  });

  it("fails naming the stage when the runner's stdout is not one result line", async () => {
    const run = await runProgram({
      stack: "dev",
      stdout: (stage, create) => (stage === "jira" ? "==> amazon-ebs: done\n{}\n" : runnerStdout(stage, [commandVars(create).region!])),
    });
    assert.match(String(run.error), /STAGE_OUTPUT_INVALID: stage jira: the runner must print exactly one JSON line on stdout, got 2/);
    assert.equal(byType(run, "command:local:Command").some((r) => r.name === "custom-dev-build"), false);
  });

  it("fails naming the stage when the result has no AMI in the build region", async () => {
    const run = await runProgram({ stack: "dev", stdout: (stage) => runnerStdout(stage, ["us-east-1"]) });
    assert.match(String(run.error), /STAGE_OUTPUT_INVALID: stage base: the build made no AMI in region eu-west-1/);
  });

  it("deregisterReplacedImages changes only the commands' delete, never create or the triggers", async () => {
    // One program run at a time: the runtime mocks are global.
    const on = await runProgram({ stack: "dev", config: { "jira-images:deregisterReplacedImages": "true" } });
    const off = await runProgram({ stack: "dev", config: { "jira-images:deregisterReplacedImages": "false" } });
    for (const stage of ["base", "jira", "custom-dev"]) {
      const { delete: deleteOn, ...restOn } = commandOf(on, stage).inputs;
      const { delete: deleteOff, ...restOff } = commandOf(off, stage).inputs;
      assert.deepEqual(restOn, restOff, stage);
      assert.match(deleteOn, new RegExp(`deregister-cli\\.ts --stage ${stage}$`));
      assert.equal(deleteOff, undefined);
    }
  });

  it("rejects a bad config before declaring any resource", async () => {
    const run = await runProgram({ stack: "prod", config: { "jira-images:instanceCount": "-2" } });
    assert.match(String(run.error), /CONFIG_INVALID: stack prod:\n {2}Pulumi\.prod\.yaml: jira-images:instanceCount must be/);
    assert.equal(run.resources.length, 0);
  });

  it("rejects user data over its budget before declaring instances", async () => {
    const run = await runProgram({ stack: "dev", config: { "jira-images:userDataBudgetBytes": "64" } });
    assert.match(String(run.error), /USER_DATA_OVER_BUDGET: user data of jira-dev-1 is \d+ bytes, over its budget of 64 bytes/);
    assert.equal(byType(run, INSTANCE).length, 0);
  });

  it("with instanceCount 0 builds the images only", async () => {
    const run = await runProgram({ stack: "dev", config: { "jira-images:instanceCount": "0" } });
    assert.equal(run.error, undefined);
    assert.equal(byType(run, "command:local:Command").length, 3);
    assert.deepEqual([byType(run, INSTANCE).length, byType(run, SG).length], [0, 0]);
    assert.deepEqual(run.outputs.instances!.value, []);
  });

  it("uses the configured VPC and subnets without looking up defaults, and a public IP only when asked", async () => {
    const run = await runProgram({
      stack: "prod",
      config: {
        "jira-images:vpcId": "vpc-0123456789abcdef0",
        "jira-images:subnetIds": '["subnet-01111111111111111","subnet-02222222222222222"]',
        "jira-images:associatePublicIp": "true",
      },
    });
    assert.equal(run.error, undefined);
    assert.deepEqual(run.calls.filter((token) => token.startsWith("aws:ec2/")), [], "no VPC or subnet lookup");
    assert.equal(byType(run, SG)[0]!.inputs.vpcId, "vpc-0123456789abcdef0");
    assert.deepEqual(byType(run, INSTANCE).map((i) => [i.inputs.subnetId, i.inputs.associatePublicIpAddress]), [
      ["subnet-01111111111111111", true],
      ["subnet-02222222222222222", true],
    ]);
  });
});
