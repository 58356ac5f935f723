/**
 * docs/iam: the trust and permission policies the README tells a platform team to apply. They
 * must parse, carry the OIDC conditions, keep the preview role read-only and match what the
 * program does (its lookups, its role names).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { INSTANCE_ROLE_BOUNDARY } from "../src/iam.ts";
import { SWEEP_ACTIONS } from "../src/lifecycle/sweep-ec2.ts";
import { MOCK_ACCOUNT, runProgram } from "./helpers/pulumi-mocks.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const iamDir = join(root, "docs", "iam");

interface Statement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action: string | string[];
  Resource?: string | string[];
  Principal?: Record<string, string>;
  Condition?: Record<string, Record<string, string | string[]>>;
}
interface PolicyDocument {
  Version: string;
  Statement: Statement[];
}

const read = (name: string): PolicyDocument => JSON.parse(readFileSync(join(iamDir, name), "utf8")) as PolicyDocument;
const actions = (statement: Statement): string[] => [statement.Action].flat();
const allowed = (policy: PolicyDocument): string[] => policy.Statement.filter((s) => s.Effect === "Allow").flatMap(actions);

/** What each invoke (data-source lookup) of the program costs in IAM. */
const INVOKE_ACTIONS: Record<string, string[]> = {
  "aws:ec2/getVpc:getVpc": ["ec2:DescribeVpcs"],
  "aws:ec2/getAmi:getAmi": ["ec2:DescribeImages"],
  "aws:ec2/getSubnets:getSubnets": ["ec2:DescribeSubnets"],
  "aws:ec2/getSubnet:getSubnet": ["ec2:DescribeSubnets"],
  "aws:index/getCallerIdentity:getCallerIdentity": ["sts:GetCallerIdentity"],
  "aws:index/getPartition:getPartition": [],
};

/**
 * What the deploy role needs for each resource type the program creates (create, read, update,
 * delete and tags, as the AWS provider calls them). A new resource type fails the test until it is
 * listed here and granted in docs/iam/deploy-<env>-policy.json.
 */
const RESOURCE_ACTIONS: Record<string, string[]> = {
  "command:local:Command": ["ec2:RunInstances", "ec2:CreateImage", "ec2:RegisterImage", "ec2:CopyImage", "ec2:CreateKeyPair", "ec2:DeleteKeyPair", "ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:DeleteSecurityGroup", "ec2:CreateTags", "ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute", "ec2:StopInstances", "ec2:TerminateInstances", "ec2:DeregisterImage", "ec2:DeleteSnapshot", "ec2:DescribeImages", "ec2:DescribeSnapshots"],
  "pulumi:providers:aws": ["sts:GetCallerIdentity"],
  "aws:ec2/instance:Instance": ["ec2:RunInstances", "ec2:TerminateInstances", "ec2:DescribeInstances", "ec2:DescribeInstanceAttribute", "ec2:DescribeInstanceCreditSpecifications", "ec2:DescribeInstanceTypes", "ec2:ModifyInstanceAttribute", "ec2:ModifyInstanceMetadataOptions", "ec2:DescribeVolumes", "ec2:CreateTags", "ec2:DeleteTags", "iam:PassRole"],
  "aws:ec2/securityGroup:SecurityGroup": ["ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:DescribeSecurityGroups", "ec2:RevokeSecurityGroupEgress", "ec2:DescribeNetworkInterfaces", "ec2:CreateTags"],
  "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DescribeSecurityGroupRules", "ec2:ModifySecurityGroupRules"],
  "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": ["ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupEgress", "ec2:DescribeSecurityGroupRules", "ec2:ModifySecurityGroupRules"],
  "aws:ec2/vpcEndpoint:VpcEndpoint": ["ec2:CreateVpcEndpoint", "ec2:DeleteVpcEndpoints", "ec2:DescribeVpcEndpoints", "ec2:ModifyVpcEndpoint", "ec2:DescribePrefixLists", "ec2:DescribeVpcEndpointServices"],
  "aws:efs/fileSystem:FileSystem": ["elasticfilesystem:CreateFileSystem", "elasticfilesystem:DeleteFileSystem", "elasticfilesystem:DescribeFileSystems", "elasticfilesystem:DescribeLifecycleConfiguration", "elasticfilesystem:PutLifecycleConfiguration", "elasticfilesystem:TagResource", "iam:CreateServiceLinkedRole"],
  "aws:efs/mountTarget:MountTarget": ["elasticfilesystem:CreateMountTarget", "elasticfilesystem:DeleteMountTarget", "elasticfilesystem:DescribeMountTargets", "elasticfilesystem:DescribeMountTargetSecurityGroups", "elasticfilesystem:ModifyMountTargetSecurityGroups", "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"],
  "aws:efs/fileSystemPolicy:FileSystemPolicy": ["elasticfilesystem:PutFileSystemPolicy", "elasticfilesystem:DescribeFileSystemPolicy", "elasticfilesystem:DeleteFileSystemPolicy"],
  "aws:efs/backupPolicy:BackupPolicy": ["elasticfilesystem:PutBackupPolicy", "elasticfilesystem:DescribeBackupPolicy"],
  "aws:lb/loadBalancer:LoadBalancer": ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes", "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets", "elasticloadbalancing:AddTags", "elasticloadbalancing:DescribeTags", "iam:CreateServiceLinkedRole"],
  "aws:lb/targetGroup:TargetGroup": ["elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:DeleteTargetGroup", "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:ModifyTargetGroup", "elasticloadbalancing:ModifyTargetGroupAttributes"],
  "aws:lb/listener:Listener": ["elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener", "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerAttributes", "elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyListenerAttributes"],
  "aws:lb/targetGroupAttachment:TargetGroupAttachment": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:DescribeTargetHealth"],
  "aws:ec2/imageBlockPublicAccess:ImageBlockPublicAccess": ["ec2:EnableImageBlockPublicAccess", "ec2:DisableImageBlockPublicAccess", "ec2:GetImageBlockPublicAccessState"],
  "aws:ebs/snapshotBlockPublicAccess:SnapshotBlockPublicAccess": ["ec2:EnableSnapshotBlockPublicAccess", "ec2:DisableSnapshotBlockPublicAccess", "ec2:GetSnapshotBlockPublicAccessState"],
  "aws:iam/role:Role": ["iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:TagRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:UpdateAssumeRolePolicy"],
  "aws:iam/rolePolicy:RolePolicy": ["iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"],
  "aws:iam/instanceProfile:InstanceProfile": ["iam:CreateInstanceProfile", "iam:GetInstanceProfile", "iam:DeleteInstanceProfile", "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:TagInstanceProfile"],
};

/** Every resource type and invoke of the program, over the settings that switch resources on. */
async function programFootprint(): Promise<{ types: Set<string>; invokes: Set<string> }> {
  const types = new Set<string>();
  const invokes = new Set<string>();
  const variants: Array<[string, Record<string, string>]> = [
    ["dev", {}],
    ["prod", { "jira-images:blockPublicImageSharing": "true" }],
    ["dev", { "jira-images:resolveSourceAmi": "true" }],
    ["prod", { "jira-images:vpcId": "vpc-0123456789abcdef0", "jira-images:subnetIds": '["subnet-01111111111111111","subnet-02222222222222222"]', "jira-images:vpcEndpoints": "always" }],
  ];
  for (const [stack, config] of variants) {
    const run = await runProgram({ stack, config });
    assert.equal(run.error, undefined, `${stack} ${JSON.stringify(config)}: ${String(run.error)}`);
    for (const resource of run.resources) if (!resource.type.startsWith("jira-images:")) types.add(resource.type);
    for (const token of run.calls) invokes.add(token);
  }
  return { types, invokes };
}

describe("IAM policies for CI (docs/iam)", () => {
  it("every file parses as an IAM policy document", () => {
    const files = readdirSync(iamDir).filter((f) => f.endsWith(".json"));
    assert.deepEqual(files.sort(), [
      "deploy-dev-policy.json",
      "deploy-dev-trust.json",
      "deploy-prod-policy.json",
      "deploy-prod-trust.json",
      "instance-boundary.json",
      "preview-policy.json",
      "preview-trust.json",
      "prune-policy.json",
    ]);
    for (const file of files) {
      const policy = read(file);
      assert.equal(policy.Version, "2012-10-17", file);
      assert.ok(policy.Statement.length > 0, file);
      for (const statement of policy.Statement) {
        assert.ok(["Allow", "Deny"].includes(statement.Effect), file);
        assert.ok(actions(statement).every((a) => /^[a-z0-9-]+:[A-Za-z*]+$/.test(a)), `${file}: ${actions(statement)}`);
      }
    }
  });

  it("trust: GitHub's OIDC provider, aud sts.amazonaws.com, sub pull_request (and main's scheduled OS image check) for preview and environment:<env> per deploy role", () => {
    const expected: Record<string, string | string[]> = {
      "preview-trust.json": ["repo:OWNER/REPO:pull_request", "repo:OWNER/REPO:ref:refs/heads/main"],
      "deploy-dev-trust.json": "repo:OWNER/REPO:environment:dev",
      "deploy-prod-trust.json": "repo:OWNER/REPO:environment:prod",
    };
    for (const [file, sub] of Object.entries(expected)) {
      const [statement, ...rest] = read(file).Statement;
      assert.equal(rest.length, 0, file);
      assert.deepEqual(statement!.Principal, { Federated: "arn:aws:iam::ACCOUNT_ID:oidc-provider/token.actions.githubusercontent.com" });
      assert.equal(statement!.Action, "sts:AssumeRoleWithWebIdentity");
      // StringEquals, not StringLike: no wildcard can widen the subject.
      assert.deepEqual(statement!.Condition, {
        StringEquals: { "token.actions.githubusercontent.com:aud": "sts.amazonaws.com", "token.actions.githubusercontent.com:sub": sub },
      });
    }
  });

  it("the preview role is read-only and allows exactly the program's lookups, the provider's identity call and the state reads", async function () {
    this.timeout(60_000);
    const preview = read("preview-policy.json");
    assert.ok(preview.Statement.every((s) => s.Effect === "Allow"));
    for (const action of allowed(preview)) {
      assert.match(action, /^(ec2:Describe[A-Za-z]+|kms:DescribeKey|sts:GetCallerIdentity|s3:GetObject|s3:ListBucket)$/, `${action} is not a read`);
    }
    const { invokes } = await programFootprint();
    const unknown = [...invokes].filter((token) => !(token in INVOKE_ACTIONS));
    assert.deepEqual(unknown, [], "a new lookup: add its IAM action to INVOKE_ACTIONS and docs/iam/preview-policy.json");
    const needed = new Set(["sts:GetCallerIdentity", ...[...invokes].flatMap((token) => INVOKE_ACTIONS[token]!)]);
    const granted = preview.Statement.filter((s) => s.Sid === "ProgramLookups").flatMap(actions);
    assert.deepEqual([...new Set(granted)].sort(), [...needed].sort(), "exactly what preview needs");
    const state = preview.Statement.filter((s) => actions(s).some((a) => a.startsWith("s3:")));
    assert.deepEqual(state.map((s) => [actions(s), s.Resource]), [
      [["s3:ListBucket"], "arn:aws:s3:::STATE_BUCKET"],
      [["s3:GetObject"], "arn:aws:s3:::STATE_BUCKET/.pulumi/*"],
    ]);
  });

  for (const env of ["dev", "prod"]) {
    it(`the ${env} deploy role writes IAM only for ${env}'s instance roles, behind the boundary, and passes roles only to EC2`, () => {
      const deploy = read(`deploy-${env}-policy.json`);
      const iamStatements = deploy.Statement.filter((s) => s.Effect === "Allow" && actions(s).some((a) => a.startsWith("iam:")));
      for (const statement of iamStatements.filter((s) => s.Sid !== "ServiceLinkedRoles")) {
        for (const resource of [statement.Resource ?? []].flat()) {
          assert.match(resource, new RegExp(`^arn:aws:iam::ACCOUNT_ID:(role/${env}-instance-role-\\*|instance-profile/${env}-instance-profile-\\*)$`), statement.Sid);
        }
      }
      const linked = iamStatements.find((s) => s.Sid === "ServiceLinkedRoles")!;
      assert.deepEqual(actions(linked), ["iam:CreateServiceLinkedRole"]);
      assert.deepEqual(linked.Condition, { StringEquals: { "iam:AWSServiceName": ["elasticfilesystem.amazonaws.com", "elasticloadbalancing.amazonaws.com"] } });
      const boundary = `arn:aws:iam::ACCOUNT_ID:policy/${INSTANCE_ROLE_BOUNDARY}`;
      const create = iamStatements.find((s) => actions(s).includes("iam:CreateRole"))!;
      // PutRolePermissionsBoundary: a role created before the boundary existed gets it on the next up.
      assert.deepEqual(actions(create).sort(), ["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy"], "role creation and its policies only behind the boundary");
      assert.deepEqual(create.Condition, { StringEquals: { "iam:PermissionsBoundary": boundary } });
      assert.ok(!allowed(deploy).includes("iam:AttachRolePolicy"), "no managed policy is attached to instance roles");
      const pass = iamStatements.find((s) => actions(s).includes("iam:PassRole"))!;
      assert.deepEqual(actions(pass), ["iam:PassRole"]);
      assert.deepEqual(pass.Condition, { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } });
      const denies = deploy.Statement.filter((s) => s.Effect === "Deny");
      assert.deepEqual(
        denies.map((s) => [actions(s), s.Condition]),
        [
          [["iam:DeleteRolePermissionsBoundary"], undefined],
          [["iam:PutRolePermissionsBoundary"], { StringNotEquals: { "iam:PermissionsBoundary": boundary } }],
        ],
        "no role loses the boundary or gets another one",
      );
      // Packer's amazon-ebs minimum, as hashicorp/packer-plugin-amazon's docs/README.md lists it.
      const packer = deploy.Statement.find((s) => s.Sid === "PackerAmazonEbs")!;
      for (const action of ["ec2:AttachVolume", "ec2:CopyImage", "ec2:CreateImage", "ec2:CreateKeyPair", "ec2:CreateSnapshot", "ec2:CreateVolume", "ec2:DeleteVolume", "ec2:DescribeImageAttribute", "ec2:DescribeInstanceStatus", "ec2:DescribeRegions", "ec2:DetachVolume", "ec2:GetPasswordData", "ec2:RegisterImage", "ec2:RunInstances", "ec2:StopInstances"]) {
        assert.ok(actions(packer).includes(action), action);
      }
      // npm run pipeline -- sweep runs with the deploy role: every EC2 action it calls.
      const sweep = deploy.Statement.find((s) => s.Sid === "Sweep")!;
      assert.deepEqual(actions(sweep), [...SWEEP_ACTIONS], "the Sweep statement lists exactly what sweep calls (src/lifecycle/sweep-ec2.ts)");
      const other = read(`deploy-${env === "dev" ? "prod" : "dev"}-policy.json`);
      assert.equal(JSON.stringify(deploy).replaceAll(`${env}-instance`, "ENV-instance"), JSON.stringify(other).replaceAll(/(dev|prod)-instance/g, "ENV-instance"), "dev and prod differ only in the role names");
    });
  }

  it("the deploy roles grant what every resource type the program creates needs", async function () {
    this.timeout(60_000);
    const { types } = await programFootprint();
    const unknown = [...types].filter((type) => !(type in RESOURCE_ACTIONS));
    assert.deepEqual(unknown, [], "a new resource type: list its IAM actions in RESOURCE_ACTIONS and grant them in docs/iam/deploy-<env>-policy.json");
    for (const env of ["dev", "prod"]) {
      const granted = new Set(allowed(read(`deploy-${env}-policy.json`)));
      const missing = [...types].flatMap((type) => RESOURCE_ACTIONS[type]!.filter((action) => !granted.has(action)).map((action) => `${type}: ${action}`));
      assert.deepEqual(missing, [], `deploy-${env}-policy.json`);
    }
  });

  it("the program's instance roles have the names the deploy policies allow and the boundary they require", async function () {
    this.timeout(60_000);
    assert.equal(INSTANCE_ROLE_BOUNDARY, "jira-images-instance-boundary");
    for (const stack of ["dev", "prod"]) {
      const run = await runProgram({ stack });
      assert.equal(run.error, undefined);
      // Pulumi's auto-naming adds a random suffix to these names: <env>-instance-role-1a2b3c4.
      const roles = run.resources.filter((r) => r.type === "aws:iam/role:Role");
      assert.deepEqual(roles.map((r) => [r.name, r.inputs.name, r.inputs.permissionsBoundary]), [
        [`${stack}-instance-role`, undefined, `arn:aws:iam::${MOCK_ACCOUNT}:policy/${INSTANCE_ROLE_BOUNDARY}`],
      ]);
      const profiles = run.resources.filter((r) => r.type === "aws:iam/instanceProfile:InstanceProfile");
      assert.deepEqual(profiles.map((r) => [r.name, r.inputs.name]), [[`${stack}-instance-profile`, undefined]]);
    }
    // What the boundary allows covers the instance role's own policies and grants no IAM.
    const boundary = read("instance-boundary.json");
    for (const action of ["ssm:UpdateInstanceInformation", "ssmmessages:OpenDataChannel", "ssm:GetParameter", "secretsmanager:GetSecretValue", "kms:Decrypt"]) {
      assert.ok(allowed(boundary).includes(action), action);
    }
    assert.ok(!allowed(boundary).some((a) => a.startsWith("iam:") || a === "*"), "the boundary grants no IAM");
  });
});
