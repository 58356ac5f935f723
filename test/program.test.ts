import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import { INSTALLER_CHECKSUMS } from "../src/installer-checksums.ts";
import { jiraInstaller } from "../stages/jira.ts";
import { strict as assert } from "node:assert";
import { loadStackConfigFile } from "../src/config.ts";
import { environmentSecret, INSTANCE_ROLE_BOUNDARY } from "../src/iam.ts";
import { CLUSTER_CACHE_PORTS } from "../src/instances.ts";
import { renderUserData } from "../src/user-data.ts";
import { REEMIT_PREVIOUS_RESULT, type ImageSummary } from "../src/pipeline.ts";
import {
  MOCK_ACCOUNT,
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
const LB = "aws:lb/loadBalancer:LoadBalancer";

/** Every standalone security group rule as "in|out <group> <port> <cidr or sg:<group>>", sorted. */
function securityRules(run: ProgramRun): string[] {
  const group = (id: string) => id.replace(/-id$/, "");
  return run.resources
    .filter((r) => r.type === "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule" || r.type === "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    .map((r) => {
      assert.equal(r.inputs.fromPort, r.inputs.toPort, r.name);
      const peer = r.inputs.cidrIpv4 ?? `sg:${group(r.inputs.referencedSecurityGroupId)}`;
      return `${r.type.includes("Ingress") ? "in" : "out"} ${group(r.inputs.securityGroupId)} ${r.inputs.fromPort} ${peer}`;
    })
    .sort();
}

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
        const expected = stack === "dev" ? `exec node --import tsx src/runner/deregister-cli.ts --stage ${stage} --stack dev` : undefined;
        assert.equal(commandOf(run, stage).inputs.delete, expected, stage);
      }
    });

    it("passes exactly the contract's variables to each stage", () => {
      const common = ["ami_regions", "build_instance_type", "image_test_suites", "image_tests_count", "inputs_hash", "kms_key_id", "region", "region_kms_key_ids", "ssh_username", "stack", "stage"];
      const keys = (stage: string) => Object.keys(commandVars(commandOf(run, stage).inputs.create)).sort();
      assert.deepEqual(keys("base"), [...common, "source_ami", "source_ami_name_filter", "source_ami_owners"].sort());
      assert.deepEqual(keys("jira"), [...common, "jira_installer_sha256", "jira_version", "source_ami"].sort());
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
      // The image tests: the stage's suites and the number of checks they hold, counted from the files.
      for (const [stage, suites, count] of [["base", ["base"], 4], ["jira", ["base", "jira"], 18], [custom, ["base", "jira", "custom"], 21]] as const) {
        const vars = commandVars(commandOf(run, stage).inputs.create);
        assert.equal(vars.image_test_suites, JSON.stringify(suites), stage);
        assert.equal(vars.image_tests_count, String(count), stage);
      }
    });

    it("hands each parent's AMI in the build region to its child (create, triggers, dependsOn)", () => {
      for (const [child, parent] of [["jira", "base"], [custom, "jira"]] as const) {
        const parentAmi = fakeAmi(parent, region);
        const { inputs, dependencies } = commandOf(run, child);
        assert.equal(commandVars(inputs.create).source_ami, parentAmi);
        assert.equal(inputs.triggers[5], `parentAmi=${parentAmi}`);
        assert.ok(dependencies.includes(commandOf(run, parent).urn), `${child} depends on ${parent}'s command`);
      }
      assert.equal(commandOf(run, "base").inputs.triggers[5], "parentAmi=none");
    });

    it("names every trigger", () => {
      for (const stage of ["base", "jira", custom]) {
        const names = commandOf(run, stage).inputs.triggers.map((t: string) => t.slice(0, t.indexOf("=")));
        assert.deepEqual(names, ["template", "workspace", "installers", "vars", "tests", "parentAmi"]);
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
      // The image tests the build ran, from the runner's result.
      assert.deepEqual(images.base!.tests, { passed: true, count: 4 });
      assert.deepEqual(images[custom]!.tests, { passed: true, count: 21 });
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
    });

    it("gives the role Session Manager and reads of its own environment's secret in its own account only", () => {
      assert.deepEqual(byType(run, "aws:iam/rolePolicyAttachment:RolePolicyAttachment"), [], "no managed policy (AmazonSSMManagedInstanceCore reads every parameter)");
      // The deploy role may create roles only with this boundary (docs/iam/deploy-<env>-policy.json).
      assert.deepEqual(
        byType(run, "aws:iam/role:Role").map((r) => r.inputs.permissionsBoundary),
        [`arn:aws:iam::${MOCK_ACCOUNT}:policy/${INSTANCE_ROLE_BOUNDARY}`],
      );
      const policies = Object.fromEntries(byType(run, "aws:iam/rolePolicy:RolePolicy").map((p) => [p.name, JSON.parse(p.inputs.policy)]));
      assert.deepEqual(Object.keys(policies).sort(), [`${stack}-db-secret`, `${stack}-session-manager`]);
      assert.deepEqual(policies[`${stack}-session-manager`].Statement, [
        {
          Sid: "SessionManager",
          Effect: "Allow",
          Action: [
            "ssm:UpdateInstanceInformation",
            "ssmmessages:CreateControlChannel",
            "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenControlChannel",
            "ssmmessages:OpenDataChannel",
          ],
          Resource: "*",
        },
      ]);
      const secret = environmentSecret(PROJECT_ROOT, stack);
      const expected =
        secret.store === "ssm"
          ? ["ssm:GetParameter", `arn:aws:ssm:${region}:${MOCK_ACCOUNT}:parameter/jira-images/${stack}/*`]
          : ["secretsmanager:GetSecretValue", `arn:aws:secretsmanager:${region}:${MOCK_ACCOUNT}:secret:jira-images/${stack}/*`];
      assert.deepEqual(
        policies[`${stack}-db-secret`].Statement.map((st: { Action: string[]; Resource: string }) => [...st.Action, st.Resource]),
        [expected],
        "one store, the environment's prefix, the stack's account; no KMS grant with the AWS managed key",
      );
      const role = JSON.parse(readFileSync(new URL(`../packer/chef/roles/jira-${stack}.json`, import.meta.url), "utf8"));
      assert.equal(secret.store, role.default_attributes.jira.db.password_store);
      assert.equal(secret.name, role.default_attributes.jira.db.password_name);
    });

    it("puts an HTTPS load balancer in front: port 80 redirects, the target group checks /status", () => {
      const [lb] = byType(run, LB);
      assert.equal(lb!.inputs.loadBalancerType, "application");
      assert.equal(lb!.inputs.internal, true);
      assert.equal(lb!.inputs.dropInvalidHeaderFields, true);
      assert.deepEqual(lb!.inputs.subnets, ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]);
      const listeners = Object.fromEntries(byType(run, "aws:lb/listener:Listener").map((l) => [l.inputs.port, l.inputs]));
      assert.deepEqual(Object.keys(listeners).sort(), ["443", "80"]);
      assert.equal(listeners[443].protocol, "HTTPS");
      assert.equal(listeners[443].certificateArn, config.certificateArn);
      assert.equal(listeners[443].sslPolicy, "ELBSecurityPolicy-TLS13-1-2-2021-06");
      assert.equal(listeners[443].defaultActions[0].type, "forward");
      assert.deepEqual(listeners[80].defaultActions, [{ type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } }]);
      const [tg] = byType(run, "aws:lb/targetGroup:TargetGroup");
      assert.equal(tg!.inputs.port, config.jiraPort);
      assert.equal(tg!.inputs.healthCheck.path, "/status");
      assert.equal(tg!.inputs.healthCheck.matcher, "200");
      assert.equal(tg!.inputs.stickiness.enabled, config.instanceCount > 1, "sticky sessions for a cluster");
      const targets = byType(run, "aws:lb/targetGroupAttachment:TargetGroupAttachment");
      assert.deepEqual(targets.map((t) => t.inputs.targetId).sort(), byType(run, INSTANCE).map((i) => `${i.name}-id`).sort());
      assert.equal(run.outputs.loadBalancerDnsName!.value, `${stack}-lb-1234567890.${region}.elb.amazonaws.com`);
    });

    it("lets allowedCidrs reach the load balancer only, and only the load balancer reach Jira", () => {
      const rules = securityRules(run);
      assert.deepEqual(rules.filter((r) => r.startsWith(`in ${stack}-lb `)), config.allowedCidrs.flatMap((c) => [`in ${stack}-lb 443 ${c}`, `in ${stack}-lb 80 ${c}`]).sort());
      const cacheRules = (dir: string) => (config.instanceCount > 1 ? [`${dir} ${stack}-instances 40001 sg:${stack}-instances`, `${dir} ${stack}-instances 40011 sg:${stack}-instances`] : []);
      assert.deepEqual(rules.filter((r) => r.startsWith(`in ${stack}-instances `)), [...cacheRules("in"), `in ${stack}-instances ${config.jiraPort} sg:${stack}-lb`].sort());
      assert.deepEqual(rules.filter((r) => r.startsWith(`out ${stack}-lb `)), [`out ${stack}-lb ${config.jiraPort} sg:${stack}-instances`]);
      assert.deepEqual(
        rules.filter((r) => r.startsWith(`out ${stack}-instances `)),
        [
          `out ${stack}-instances 443 0.0.0.0/0`,
          ...config.databaseCidrs.map((c) => `out ${stack}-instances 5432 ${c}`),
          ...(config.instanceCount > 1 ? [`out ${stack}-instances 2049 sg:${stack}-shared-home`] : []),
          ...cacheRules("out"),
        ].sort(),
      );
      for (const sg of byType(run, SG)) {
        assert.equal(sg.inputs.ingress, undefined, `${sg.name}: rules are separate resources`);
        assert.equal(sg.inputs.egress, undefined, `${sg.name}: rules are separate resources`);
        assert.equal(sg.inputs.vpcId, "vpc-0d0e0f0a0b0c0d0e0");
      }
    });

    it("gives the default VPC's instances endpoints for SSM and their secret store, open to the instances only", () => {
      const store = environmentSecret(PROJECT_ROOT, stack).store;
      const endpoints = byType(run, "aws:ec2/vpcEndpoint:VpcEndpoint");
      assert.deepEqual(
        endpoints.map((e) => e.inputs.serviceName).sort(),
        [`com.amazonaws.${region}.ssm`, `com.amazonaws.${region}.ssmmessages`, ...(store === "secretsmanager" ? [`com.amazonaws.${region}.secretsmanager`] : [])].sort(),
      );
      for (const { inputs } of endpoints) {
        assert.equal(inputs.vpcEndpointType, "Interface");
        assert.equal(inputs.privateDnsEnabled, true);
        assert.equal(inputs.vpcId, "vpc-0d0e0f0a0b0c0d0e0");
        assert.deepEqual(inputs.subnetIds, ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]);
        assert.deepEqual(inputs.securityGroupIds, [`${stack}-endpoints-id`]);
      }
      assert.deepEqual(securityRules(run).filter((r) => r.includes(`${stack}-endpoints `)), [`in ${stack}-endpoints 443 sg:${stack}-instances`]);
      for (const instance of byType(run, INSTANCE)) {
        for (const endpoint of endpoints) assert.ok(instance.dependencies.includes(endpoint.urn), `${instance.name} waits for ${endpoint.name}`);
      }
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

describe("the inputs_hash image tag (runtime mocks)", () => {
  const INSTALLER = jiraInstaller("9.12.15");
  const tags = (run: ProgramRun) =>
    Object.fromEntries(["base", "jira", "custom-dev"].map((stage) => [stage, commandVars(commandOf(run, stage).inputs.create).inputs_hash]));

  it("changes for a stage and every stage below it when any content input changes, and for no other", async () => {
    const root = projectCopy();
    const runs: Record<string, Record<string, string | undefined>> = {};
    const edits: Array<[string, () => void]> = [
      ["before", () => undefined],
      ["base template", () => appendFileSync(join(root, "packer/base/base.pkr.hcl"), "\n# changed\n")],
      ["Chef workspace", () => appendFileSync(join(root, "packer/chef/roles/jira-base.json"), "\n")],
      [
        "installer",
        () => {
          // Another installer, pinned as a reviewer would pin it.
          writeFileSync(join(root, INSTALLER), "another installer\n");
          writeFileSync(join(root, INSTALLER_CHECKSUMS), `${createHash("sha256").update("another installer\n").digest("hex")}  ${basename(INSTALLER)}\n`);
        },
      ],
      ["dev var file", () => appendFileSync(join(root, "packer/custom/dev.pkrvars.hcl"), "\n")],
    ];
    // One program run at a time: the runtime mocks are global.
    for (const [name, edit] of edits) {
      edit();
      const run = await runProgram({ stack: "dev", projectRoot: root });
      assert.equal(run.error, undefined, String(run.error));
      runs[name] = tags(run);
    }
    const changed = (from: string, to: string) => Object.keys(runs[to]!).filter((stage) => runs[to]![stage] !== runs[from]![stage]);
    assert.deepEqual(changed("before", "base template"), ["base", "jira", "custom-dev"]);
    assert.deepEqual(changed("base template", "Chef workspace"), ["jira", "custom-dev"]);
    assert.deepEqual(changed("Chef workspace", "installer"), ["jira", "custom-dev"]);
    assert.deepEqual(changed("installer", "dev var file"), ["custom-dev"]);
    const config = await runProgram({ stack: "dev", projectRoot: root, config: { "jira-images:chefNode": "dev" } });
    assert.deepEqual(tags(config), runs["dev var file"], "the same inputs give the same tags");
    const vars = await runProgram({ stack: "dev", projectRoot: root, config: { "jira-images:buildInstanceType": "t3.xlarge" } });
    assert.deepEqual(Object.keys(runs["dev var file"]!).filter((stage) => tags(vars)[stage] !== runs["dev var file"]![stage]), ["base", "jira", "custom-dev"]);
  });
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
    assert.match(jira.triggers[4], /^tests=sha256:/);
    assert.notEqual(typeof jira.triggers[5], "string", "the parent AMI is not known in a preview");
    assert.equal(typeof byType(run, INSTANCE)[0]!.inputs.ami, "object");
  });

  it("preview of a cluster: every node, the shared home's mount targets and the load balancer are declared", async () => {
    const run = await runProgram({ stack: "prod", preview: true });
    assert.equal(run.error, undefined);
    assert.equal(byType(run, INSTANCE).length, 2);
    assert.equal(byType(run, "aws:efs/mountTarget:MountTarget").length, 2);
    assert.equal(byType(run, "aws:lb/targetGroupAttachment:TargetGroupAttachment").length, 2);
    assert.equal(run.outputs.instances!.known, false);
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

  it("an image whose result has no tests (state from before the image tests) has no tests in its images entry", async () => {
    const run = await runProgram({ stack: "dev", stdout: (stage, create) => runnerStdout(stage, [commandVars(create).region!]) });
    assert.equal(run.error, undefined, String(run.error));
    const images = run.outputs.images!.value as Record<string, ImageSummary>;
    for (const stage of ["base", "jira", "custom-dev"]) assert.equal("tests" in images[stage]!, false, stage);
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
      assert.match(deleteOn, new RegExp(`deregister-cli\\.ts --stage ${stage} --stack dev$`));
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
    assert.deepEqual(run.calls.filter((c) => /getVpc|getSubnets/.test(c)), [], "no default VPC lookup");
    assert.equal(byType(run, SG)[0]!.inputs.vpcId, "vpc-0123456789abcdef0");
    assert.deepEqual(byType(run, "aws:ec2/vpcEndpoint:VpcEndpoint"), [], "auto: a configured VPC brings its own route to AWS");
    assert.deepEqual(byType(run, INSTANCE).map((i) => [i.inputs.subnetId, i.inputs.associatePublicIpAddress]), [
      ["subnet-01111111111111111", true],
      ["subnet-02222222222222222", true],
    ]);
  });

  it("vpcEndpoints always: endpoints in one of the instances' subnets per zone", async () => {
    const run = await runProgram({
      stack: "dev",
      config: {
        "jira-images:vpcId": "vpc-0123456789abcdef0",
        "jira-images:subnetIds": '["subnet-01111111111111111","subnet-03333333333333333","subnet-02222222222222222"]',
        "jira-images:vpcEndpoints": "always",
      },
    });
    assert.equal(run.error, undefined);
    const endpoints = byType(run, "aws:ec2/vpcEndpoint:VpcEndpoint");
    assert.deepEqual(endpoints.map((e) => e.inputs.serviceName).sort(), ["com.amazonaws.eu-west-1.ssm", "com.amazonaws.eu-west-1.ssmmessages"]);
    for (const e of endpoints) assert.deepEqual(e.inputs.subnetIds, ["subnet-01111111111111111", "subnet-02222222222222222"]);
  });

  it("vpcEndpoints never with a public IP in the default VPC: no endpoints", async () => {
    const run = await runProgram({ stack: "prod", config: { "jira-images:vpcEndpoints": "never", "jira-images:associatePublicIp": "true" } });
    assert.equal(run.error, undefined);
    assert.deepEqual(byType(run, "aws:ec2/vpcEndpoint:VpcEndpoint"), []);
    assert.equal(byType(run, INSTANCE).length, 2);
  });

  it("refuses instances in the default VPC with no way to SSM before declaring anything", async () => {
    const run = await runProgram({ stack: "dev", config: { "jira-images:vpcEndpoints": "never" } });
    assert.match(String(run.error), /CONFIG_INVALID: stack dev:\n {2}Pulumi\.dev\.yaml: jira-images:vpcEndpoints is never, but the instances run in the default VPC without a public IP/);
    assert.equal(run.resources.length, 0);
  });

  it("with a customer-managed key grants kms:Decrypt on that key through the secret's store only", async () => {
    const key = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-4333-8444-555555555555";
    for (const [stack, service] of [["dev", "ssm"], ["prod", "secretsmanager"]] as const) {
      const run = await runProgram({ stack, config: { "jira-images:secretsKmsKeyArn": key } });
      assert.equal(run.error, undefined);
      const policy = JSON.parse(byType(run, "aws:iam/rolePolicy:RolePolicy").find((p) => p.name === `${stack}-db-secret`)!.inputs.policy);
      assert.deepEqual(policy.Statement[1], {
        Sid: "DecryptThroughTheStoreOnly",
        Effect: "Allow",
        Action: ["kms:Decrypt"],
        Resource: key,
        Condition: { StringEquals: { "kms:ViaService": `${service}.eu-west-1.amazonaws.com` } },
      });
    }
  });

  it("opens nothing to anyone when allowedCidrs is empty", async () => {
    const run = await runProgram({ stack: "dev", config: { "jira-images:allowedCidrs": "[]" } });
    assert.equal(run.error, undefined);
    const inbound = securityRules(run).filter((r) => r.startsWith("in "));
    assert.deepEqual(inbound, ["in dev-endpoints 443 sg:dev-instances", "in dev-instances 8080 sg:dev-lb"]);
    assert.equal(inbound.some((r) => r.includes("0.0.0.0/0")), false);
  });

  it("plain HTTP only where configured: no certificate, port 80 forwards to Jira", async () => {
    const run = await runProgram({
      stack: "dev",
      config: { "jira-images:certificateArn": "", "jira-images:allowPlainHttp": "true", "jira-images:jiraBaseUrl": "http://jira-dev.internal" },
    });
    assert.equal(run.error, undefined);
    const listeners = byType(run, "aws:lb/listener:Listener");
    assert.deepEqual(listeners.map((l) => [l.inputs.port, l.inputs.protocol, l.inputs.defaultActions[0].type]), [[80, "HTTP", "forward"]]);
    assert.deepEqual(securityRules(run).filter((r) => r.startsWith("in dev-lb ")), ["in dev-lb 80 10.0.0.0/8"]);
  });

  it("opens the configured SMTP ports outbound", async () => {
    const run = await runProgram({ stack: "dev", config: { "jira-images:smtpPorts": "[587, 465]" } });
    assert.equal(run.error, undefined);
    const smtp = securityRules(run).filter((r) => / (587|465) /.test(r));
    assert.deepEqual(smtp, ["out dev-instances 465 0.0.0.0/0", "out dev-instances 587 0.0.0.0/0"]);
  });

  it("refuses load balancer subnets in a single zone", async () => {
    const run = await runProgram({
      stack: "dev",
      config: { "jira-images:vpcId": "vpc-0123456789abcdef0", "jira-images:subnetIds": '["subnet-01111111111111111","subnet-03333333333333333"]' },
    });
    assert.match(String(run.error), /NETWORK_INVALID: the load balancer needs subnets in at least two availability zones, but the instances' subnets are all in eu-west-1a\. Fix: set jira-images:subnetIds/);
  });

  it("a single node is no cluster: no shared home, no cluster settings, no sticky sessions", async () => {
    const run = await runProgram({ stack: "prod", config: { "jira-images:instanceCount": "1" } });
    assert.equal(run.error, undefined);
    assert.deepEqual(byType(run, "aws:efs/fileSystem:FileSystem"), []);
    const [instance] = byType(run, INSTANCE);
    assert.doesNotMatch(instance!.inputs.userData, /JIRA_CLUSTER|JIRA_SHARED_HOME_EFS/);
    assert.equal(byType(run, "aws:lb/targetGroup:TargetGroup")[0]!.inputs.stickiness.enabled, false);
  });

  it("two or more nodes are a Data Center cluster on an encrypted EFS shared home", async () => {
    const run = await runProgram({ stack: "prod", config: { "jira-images:instanceCount": "3" } });
    assert.equal(run.error, undefined);
    const [fs] = byType(run, "aws:efs/fileSystem:FileSystem");
    assert.equal(fs!.inputs.encrypted, true);
    assert.deepEqual(byType(run, "aws:efs/backupPolicy:BackupPolicy").map((b) => b.inputs.backupPolicy.status), ["ENABLED"]);
    const [policy] = byType(run, "aws:efs/fileSystemPolicy:FileSystemPolicy").map((p) => JSON.parse(p.inputs.policy));
    assert.deepEqual(policy.Statement[1].Condition, { Bool: { "aws:SecureTransport": "false" } });
    assert.equal(policy.Statement[1].Effect, "Deny");
    assert.deepEqual(policy.Statement[0].Condition, { Bool: { "elasticfilesystem:AccessedViaMountTarget": "true" } });
    assert.match(policy.Statement[0].Resource, /^arn:aws:mock:eu-west-1:123456789012:aws:efs\/fileSystem:FileSystem\//);
    const targets = byType(run, "aws:efs/mountTarget:MountTarget");
    assert.deepEqual(targets.map((t) => t.inputs.subnetId).sort(), ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]);
    for (const t of targets) assert.deepEqual(t.inputs.securityGroups, ["prod-shared-home-id"]);
    assert.deepEqual(securityRules(run).filter((r) => r.includes(" 2049 ")), ["in prod-shared-home 2049 sg:prod-instances", "out prod-instances 2049 sg:prod-shared-home"]);
    const tg = byType(run, "aws:lb/targetGroup:TargetGroup")[0]!;
    assert.deepEqual([tg.inputs.stickiness.type, tg.inputs.stickiness.enabled], ["lb_cookie", true]);
    const attributes = readFileSync(new URL("../packer/chef/cookbooks/jira/attributes/default.rb", import.meta.url), "utf8");
    const imagePorts = ["ehcache_listener_port", "ehcache_object_port"].map((key) => Number(new RegExp(`\\['${key}'\\] = (\\d+)`).exec(attributes)?.[1]));
    assert.deepEqual([...CLUSTER_CACHE_PORTS], imagePorts, "the security group opens the cache ports the image listens on");
    assert.deepEqual(securityRules(run).filter((r) => / 400[01]1 /.test(r)), [
      "in prod-instances 40001 sg:prod-instances",
      "in prod-instances 40011 sg:prod-instances",
      "out prod-instances 40001 sg:prod-instances",
      "out prod-instances 40011 sg:prod-instances",
    ]);
    const instances = byType(run, INSTANCE);
    assert.equal(instances.length, 3);
    for (const instance of instances) {
      assert.match(instance.inputs.userData, /\nJIRA_SHARED_HOME_EFS=fs-0123456789abcdef0\.efs\.eu-west-1\.amazonaws\.com\nJIRA_CLUSTER=true\n/);
      for (const t of targets) assert.ok(instance.dependencies.includes(t.urn), `${instance.name} waits for ${t.name}`);
    }
  });

  it("checks a cluster node's user-data budget with the longest shared-home name, before any resource", async () => {
    const single = renderUserData({ hostname: "jira-prod-1", environment: "prod", jiraBaseUrl: "https://jira.example.com" });
    const budget = String(Buffer.byteLength(single) + 20);
    assert.equal((await runProgram({ stack: "prod", config: { "jira-images:instanceCount": "1", "jira-images:userDataBudgetBytes": budget } })).error, undefined);
    const run = await runProgram({ stack: "prod", config: { "jira-images:userDataBudgetBytes": budget } });
    assert.match(String(run.error), new RegExp(`USER_DATA_OVER_BUDGET: user data of jira-prod-1 is \\d+ bytes, over its budget of ${budget} bytes`));
    assert.deepEqual(byType(run, INSTANCE), []);
  });

  it("blocks public AMI and snapshot sharing in every region of the stack when asked", async () => {
    assert.deepEqual(byType(await runProgram({ stack: "prod" }), "aws:ec2/imageBlockPublicAccess:ImageBlockPublicAccess"), []);
    const run = await runProgram({ stack: "prod", config: { "jira-images:blockPublicImageSharing": "true" } });
    assert.equal(run.error, undefined);
    const images = byType(run, "aws:ec2/imageBlockPublicAccess:ImageBlockPublicAccess");
    const snapshots = byType(run, "aws:ebs/snapshotBlockPublicAccess:SnapshotBlockPublicAccess");
    assert.deepEqual(images.map((r) => [r.inputs.region, r.inputs.state]).sort(), [["eu-central-1", "block-new-sharing"], ["eu-west-1", "block-new-sharing"]]);
    assert.deepEqual(snapshots.map((r) => [r.inputs.region, r.inputs.state]).sort(), [["eu-central-1", "block-all-sharing"], ["eu-west-1", "block-all-sharing"]]);
  });
});
