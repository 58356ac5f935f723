import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  PROJECT,
  SETTINGS,
  loadStackConfigFile,
  parseStackConfig,
  readStackFileConfig,
  stackFileToRawConfig,
  type StackConfig,
} from "../src/config.ts";
import { PROJECT_ROOT } from "./helpers/pulumi-mocks.ts";

const source = { stack: "dev", file: "Pulumi.dev.yaml" };
const devRaw = () => readStackFileConfig(PROJECT_ROOT, "dev");

function parseWith(changes: Record<string, string | undefined>): StackConfig {
  const raw = devRaw();
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete raw[`${PROJECT}:${key}`];
    else raw[`${PROJECT}:${key}`] = value;
  }
  return parseStackConfig(raw, source);
}

function assertConfigError(changes: Record<string, string | undefined>, ...expected: RegExp[]): void {
  assert.throws(
    () => parseWith(changes),
    (err: Error) => {
      assert.match(err.message, /^CONFIG_INVALID: stack dev:/);
      for (const re of expected) assert.match(err.message, re);
      return true;
    },
  );
}

describe("stack config", () => {
  it("parses Pulumi.dev.yaml into a typed StackConfig with the project defaults", () => {
    const config = loadStackConfigFile(PROJECT_ROOT, "dev");
    assert.equal(config.stack, "dev");
    assert.equal(config.environment, "dev");
    assert.equal(config.chefNode, "dev");
    assert.equal(config.instanceCount, 1);
    assert.deepEqual(config.amiRegions, []);
    assert.deepEqual(config.sourceAmiOwners, ["amazon"]);
    assert.equal(config.sourceAmiNameFilter, "al2023-ami-2023.*-x86_64");
    assert.equal(config.userDataBudgetBytes, 1024);
    assert.equal(config.associatePublicIp, false);
    assert.deepEqual(config.tags, { CostCenter: "jira", Owner: "platform-team" });
  });

  it("parses Pulumi.prod.yaml with its copy region and instance count", () => {
    const config = loadStackConfigFile(PROJECT_ROOT, "prod");
    assert.equal(config.environment, "prod");
    assert.deepEqual(config.amiRegions, ["eu-central-1"]);
    assert.equal(config.instanceCount, 2);
    assert.equal(config.rootVolumeSizeGb, 50);
  });

  it("declares every setting in Pulumi.yaml with the same type and default as the program", () => {
    const project = parseYaml(readFileSync(join(PROJECT_ROOT, "Pulumi.yaml"), "utf8")) as {
      name: string;
      backend: { url: string };
      config: Record<string, { type: string; description?: string; default?: unknown; items?: { type: string } }>;
    };
    assert.equal(project.name, PROJECT);
    assert.equal(project.backend.url, "file://./.pulumi-state");
    assert.deepEqual(Object.keys(project.config).sort(), Object.keys(SETTINGS).sort());
    for (const [key, setting] of Object.entries(SETTINGS)) {
      const declared = project.config[key]!;
      assert.equal(declared.type, setting.kind, `type of ${key}`);
      assert.ok(declared.description && declared.description.length > 10, `description of ${key}`);
      assert.deepEqual(declared.default, (setting as { default?: unknown }).default, `default of ${key}`);
      if (setting.kind === "array") {
        assert.deepEqual(declared.items, { type: (setting as { items?: string }).items ?? "string" }, `items of ${key}`);
      }
    }
  });

  it("takes a KMS key per region for images shared with other accounts", () => {
    const arn = "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const config = parseWith({ kmsKeyId: "alias/jira-images", amiRegions: '["eu-central-1"]', regionKmsKeyIds: JSON.stringify([`eu-central-1=${arn}`]) });
    assert.equal(config.kmsKeyId, "alias/jira-images");
    assert.deepEqual(config.regionKmsKeyIds, [`eu-central-1=${arn}`]);
    assert.equal(parseWith({}).kmsKeyId, "");
  });

  it("removes replaced images in dev only, and keeps them by default", () => {
    assert.equal(loadStackConfigFile(PROJECT_ROOT, "dev").deregisterReplacedImages, true);
    assert.equal(loadStackConfigFile(PROJECT_ROOT, "prod").deregisterReplacedImages, false);
    assert.equal(parseWith({ deregisterReplacedImages: undefined }).deregisterReplacedImages, false);
  });

  it("reads values the way the Pulumi runtime hands them over (strings, JSON for the rest)", () => {
    const raw = stackFileToRawConfig({ "jira-images:instanceCount": 3, "jira-images:tags": ["A=b"], "jira-images:region": "eu-west-1" });
    assert.deepEqual(raw, { "jira-images:instanceCount": "3", "jira-images:tags": '["A=b"]', "jira-images:region": "eu-west-1" });
  });

  it("ignores other namespaces such as aws:", () => {
    const raw = { ...devRaw(), "aws:region": "us-east-1" };
    assert.equal(parseStackConfig(raw, source).region, "eu-west-1");
  });

  describe("bad values fail with the stack file, the key and the fix", () => {
    it("missing required region", () =>
      assertConfigError({ region: undefined }, /Pulumi\.dev\.yaml: jira-images:region is required/, /Fix: pulumi config set --stack dev jira-images:region eu-west-1/));
    it("missing environment", () => assertConfigError({ environment: undefined }, /jira-images:environment is required/));
    it("missing chefNode", () => assertConfigError({ chefNode: undefined }, /jira-images:chefNode is required/));
    it("region that is not a region", () =>
      assertConfigError({ region: "Ireland" }, /jira-images:region must be an AWS region name, got "Ireland"/));
    it("copy region list that is not a list", () =>
      assertConfigError({ amiRegions: "eu-central-1" }, /jira-images:amiRegions must be a list of AWS region names/, /Fix: write "jira-images:amiRegions: \["eu-central-1"\]" under config: in Pulumi\.dev\.yaml/));
    it("copy regions that include the build region", () =>
      assertConfigError({ amiRegions: '["eu-west-1","eu-central-1"]' }, /lists the build region eu-west-1/));
    it("pinned source AMI that is not an AMI ID", () =>
      assertConfigError({ sourceAmi: "ami-xyz" }, /jira-images:sourceAmi must be an AMI ID/));
    it("empty source owner list", () => assertConfigError({ sourceAmiOwners: "[]" }, /jira-images:sourceAmiOwners must be a non-empty list/));
    it("Jira version that is not x.y.z", () =>
      assertConfigError({ jiraVersion: "latest" }, /jira-images:jiraVersion must be a version such as 9\.12\.15, got "latest"/));
    it("instance type that is not one", () => assertConfigError({ instanceType: "large" }, /jira-images:instanceType must be an EC2 instance type/));
    it("environment with upper case", () => assertConfigError({ environment: "Dev" }, /jira-images:environment must be a lower-case name/));
    it("negative instance count", () =>
      assertConfigError({ instanceCount: "-1" }, /jira-images:instanceCount must be an integer from 0 to 20, got "-1"/, /Fix: write "jira-images:instanceCount: 1"/));
    it("fractional instance count", () => assertConfigError({ instanceCount: "1.5" }, /jira-images:instanceCount must be an integer/));
    it("instance count that is not a number", () => assertConfigError({ instanceCount: "two" }, /jira-images:instanceCount must be an integer/));
    it("deregistration flag that is not a boolean", () =>
      assertConfigError({ deregisterReplacedImages: "yes" }, /Pulumi\.dev\.yaml: jira-images:deregisterReplacedImages must be true or false, got "yes"\. Fix: write "jira-images:deregisterReplacedImages: true" under config: in Pulumi\.dev\.yaml/));
    it("public IP flag that is not a boolean", () => assertConfigError({ associatePublicIp: "yes" }, /jira-images:associatePublicIp must be true or false/));
    it("subnets without their VPC", () =>
      assertConfigError({ subnetIds: '["subnet-0123456789abcdef0"]', vpcId: "" }, /jira-images:vpcId is required when subnetIds is set/));
    it("malformed subnet ID", () => assertConfigError({ subnetIds: '["sub-1"]' }, /jira-images:subnetIds must be a list of subnet IDs/));
    it("CIDR with an octet over 255", () => assertConfigError({ allowedCidrs: '["10.0.0.300/8"]' }, /jira-images:allowedCidrs must be a list of IPv4 CIDR blocks/));
    it("base URL with a quote", () => assertConfigError({ jiraBaseUrl: "https://x.example.com/'" }, /jira-images:jiraBaseUrl must be an http\(s\) URL/));
    it("base URL with user:password@, without printing the password", () => {
      assertConfigError({ jiraBaseUrl: "https://admin:s3cret@jira.example.com" }, /Pulumi\.dev\.yaml: jira-images:jiraBaseUrl must be an http\(s\) URL with a host and without user:password@/, /got "https:\/\/\*\*\*@jira\.example\.com"/);
      assert.throws(() => parseWith({ jiraBaseUrl: "https://admin:s3cret@jira.example.com" }), (err: Error) => !err.message.includes("s3cret"));
      assertConfigError({ jiraBaseUrl: "https://admin@jira.example.com" }, /jira-images:jiraBaseUrl must be/);
    });
    it("base URL that is not a URL, or not http(s)", () => {
      assertConfigError({ jiraBaseUrl: "https://" }, /jira-images:jiraBaseUrl must be/);
      assertConfigError({ jiraBaseUrl: "ftp://jira.example.com" }, /jira-images:jiraBaseUrl must be/);
      assertConfigError({ jiraBaseUrl: "https://jira.example.com/\u0007" }, /jira-images:jiraBaseUrl must be/);
    });
    it("accepts a base URL with a query string and shell syntax as data", () => {
      assert.equal(parseWith({ jiraBaseUrl: "https://jira.example.com/jira?a=1&b=2" }).jiraBaseUrl, "https://jira.example.com/jira?a=1&b=2");
      assert.equal(parseWith({ jiraBaseUrl: "https://jira.example.com/;touch>/tmp/x" }).jiraBaseUrl, "https://jira.example.com/;touch>/tmp/x");
    });
    it("instances in the default VPC with neither endpoints nor a public IP", () =>
      assertConfigError({ vpcEndpoints: "never" }, /jira-images:vpcEndpoints is never, but the instances run in the default VPC without a public IP/, /Fix: remove jira-images:vpcEndpoints/));
    it("accepts vpcEndpoints never where another route exists", () => {
      assert.equal(parseWith({ vpcEndpoints: "never", associatePublicIp: "true" }).vpcEndpoints, "never");
      assert.equal(parseWith({ vpcEndpoints: "never", vpcId: "vpc-0123456789abcdef0" }).vpcEndpoints, "never");
      assert.equal(parseWith({ vpcEndpoints: "never", instanceCount: "0" }).vpcEndpoints, "never");
      assert.equal(parseWith({}).vpcEndpoints, "auto");
    });
    it("vpcEndpoints that is not auto, always or never", () => assertConfigError({ vpcEndpoints: "true" }, /jira-images:vpcEndpoints must be auto, always or never, got "true"/));
    it("no HTTPS certificate and no plain HTTP", () =>
      assertConfigError({ certificateArn: undefined, jiraBaseUrl: "" }, /jira-images:certificateArn is required: the load balancer serves Jira over HTTPS only unless allowPlainHttp is true/));
    it("an https base URL without a certificate, an http one without plain HTTP", () => {
      assertConfigError({ certificateArn: undefined, allowPlainHttp: "true" }, /jira-images:jiraBaseUrl is https, but without certificateArn/);
      assertConfigError({ jiraBaseUrl: "http://jira-dev.example.com" }, /jira-images:jiraBaseUrl is plain http, but the load balancer redirects HTTP to HTTPS/);
      assert.equal(parseWith({ certificateArn: undefined, allowPlainHttp: "true", jiraBaseUrl: "http://jira-dev.internal" }).allowPlainHttp, true);
    });
    it("certificate or KMS key in another region", () => {
      assertConfigError({ certificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-4333-8444-555555555555" }, /jira-images:certificateArn is in region us-east-1, not the stack's region eu-west-1/);
      assertConfigError({ secretsKmsKeyArn: "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-4333-8444-555555555555" }, /jira-images:secretsKmsKeyArn is in region us-east-1/);
      assertConfigError({ secretsKmsKeyArn: "alias/jira-dev" }, /jira-images:secretsKmsKeyArn must be a KMS key ARN/);
    });
    it("load balancer subnets without their VPC", () =>
      assertConfigError({ loadBalancerSubnetIds: '["subnet-0123456789abcdef0","subnet-0fedcba9876543210"]' }, /jira-images:vpcId is required when loadBalancerSubnetIds is set/));
    it("SMTP ports that are not ports", () => {
      assertConfigError({ smtpPorts: '["587"]' }, /jira-images:smtpPorts must be a list of TCP ports/);
      assert.deepEqual(parseWith({ smtpPorts: "[587, 465]" }).smtpPorts, [587, 465]);
    });
    it("user data budget over the AWS limit", () =>
      assertConfigError({ userDataBudgetBytes: "20000" }, /jira-images:userDataBudgetBytes must be an integer from 1 to 16384/));
    it("root volume too small", () => assertConfigError({ rootVolumeSizeGb: "4" }, /jira-images:rootVolumeSizeGb must be an integer from 8/));
    it("tag without =", () => assertConfigError({ tags: '["CostCenter"]' }, /jira-images:tags must be a list of "Key=Value" strings/));
    it("tag overriding a lineage tag", () => assertConfigError({ tags: '["Stage=x"]' }, /overrides the program's own tag Stage/));
    it("KMS key that Packer would refuse", () =>
      assertConfigError({ kmsKeyId: "jira-images" }, /jira-images:kmsKeyId must be a KMS key ID, alias\/<name> or key ARN/));
    it("copy-region key for a region that is not copied to", () =>
      assertConfigError(
        { kmsKeyId: "alias/jira-images", amiRegions: '["eu-central-1"]', regionKmsKeyIds: '["eu-central-1=alias/jira-images","us-east-1=alias/jira-images"]' },
        /regionKmsKeyIds names us-east-1, which is not in amiRegions/,
      ));
    it("copy-region keys without a key for the build region", () =>
      assertConfigError({ amiRegions: '["eu-central-1"]', regionKmsKeyIds: '["eu-central-1=alias/jira-images"]' }, /jira-images:kmsKeyId is required when regionKmsKeyIds is set/));
    it("a KMS key for the build region but none for a copy region", () =>
      assertConfigError(
        { kmsKeyId: "alias/jira-images", amiRegions: '["eu-central-1","us-east-1"]', regionKmsKeyIds: '["eu-central-1=alias/jira-images"]' },
        /regionKmsKeyIds names no key for us-east-1: those copies would use aws\/ebs and could not be shared/,
        /Fix: write "jira-images:regionKmsKeyIds: \["eu-central-1=alias\/jira-images","us-east-1=alias\/jira-images"\]"/,
      ));
    it("copy-region key that is not region=key", () =>
      assertConfigError({ regionKmsKeyIds: '["eu-central-1:alias/x"]' }, /jira-images:regionKmsKeyIds must be a list of "region=key" strings/));
    it("misspelt key, with a suggestion", () =>
      assertConfigError({ instanceCuont: "2" }, /jira-images:instanceCuont is not a setting of this project \(did you mean jira-images:instanceCount\?\)/, /Fix: pulumi config rm --stack dev jira-images:instanceCuont/));
    it("several problems at once, one line each", () => {
      assert.throws(
        () => parseWith({ region: "x", instanceCount: "99" }),
        (err: Error) => err.message.split("\n").length === 3 && /region/.test(err.message) && /instanceCount/.test(err.message),
      );
    });
  });

  describe("the promotion pin (jira-images:promoted)", () => {
    it("is absent when the stack builds its whole chain (no key, or Pulumi.yaml's default {})", () => {
      assert.equal(parseWith({}).promoted, undefined);
      assert.equal(parseWith({ promoted: "{}" }).promoted, undefined);
      assert.equal("promoted" in parseWith({ promoted: "{}" }), false);
    });

    it("reads fromStack, stage and amiId; amiId may be absent (nothing promoted yet)", () => {
      const pin = { fromStack: "organization/jira-images/staging", stage: "jira", amiId: "ami-0123456789abcdef0" };
      assert.deepEqual(parseWith({ promoted: JSON.stringify(pin) }).promoted, pin);
      assert.deepEqual(parseWith({ promoted: '{"fromStack":"prod","stage":"jira"}' }).promoted, { fromStack: "prod", stage: "jira" });
    });

    it("rejects a bad pin naming the stack file, the key, the field and the fix", () =>
      assertConfigError(
        { promoted: '{"fromStack":"dev","stage":"jira","amiId":"jira.version"}' },
        /Pulumi\.dev\.yaml: jira-images:promoted must be \{fromStack: .*got "\{\\"fromStack.* \(promoted\.amiId: not an AMI ID \(ami-xxxxxxxx\)\)/,
        /Fix: write "jira-images:promoted: \{fromStack: dev, stage: jira\}" under config: in Pulumi\.dev\.yaml/,
      ));
    it("rejects a pin without a stage, a stack name with spaces, an unknown field", () => {
      assertConfigError({ promoted: '{"fromStack":"dev"}' }, /\(promoted\.stage: /);
      assertConfigError({ promoted: '{"fromStack":"my dev","stage":"jira"}' }, /\(promoted\.fromStack: not a stack name \(dev\) or org\/project\/stack\)/);
      assertConfigError({ promoted: '{"fromStack":"a/b","stage":"jira"}' }, /promoted\.fromStack: not a stack name/);
      assertConfigError({ promoted: '{"from":"dev","stage":"jira"}' }, /promoted: Unrecognized key: "from"|promoted\.from/);
      assertConfigError({ promoted: '"dev"' }, /jira-images:promoted must be/);
    });
    it("rejects a pin that takes the stage from the stack itself", () => {
      assertConfigError({ promoted: '{"fromStack":"dev","stage":"jira"}' }, /jira-images:promoted takes jira from dev, which is this stack itself/);
      assertConfigError({ promoted: '{"fromStack":"organization/jira-images/dev","stage":"jira"}' }, /which is this stack itself/);
    });
  });
});
