/**
 * docs/iam: the trust and permission policies the README tells a platform team to apply. They
 * must parse, carry the OIDC conditions, keep the preview role read-only and match what the
 * program does (its lookups, its role names).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { INSTANCE_ROLE_BOUNDARY } from "../src/instances.ts";

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

/** What each data-source lookup of the program costs in IAM; a new lookup must be added here and to preview-policy.json. */
const LOOKUP_ACTIONS: Record<string, string> = {
  "ec2.getVpc": "ec2:DescribeVpcs",
  "ec2.getSubnets": "ec2:DescribeSubnets",
  "ec2.getAmi": "ec2:DescribeImages",
  "ec2.getAmiIds": "ec2:DescribeImages",
  "ec2.getAvailabilityZones": "ec2:DescribeAvailabilityZones",
  "ec2.getVpcEndpointService": "ec2:DescribeVpcEndpointServices",
  "ec2.getRouteTables": "ec2:DescribeRouteTables",
  "kms.getKey": "kms:DescribeKey",
  "kms.getAlias": "kms:DescribeKey",
  getCallerIdentity: "sts:GetCallerIdentity",
  getRegion: "",
  getPartition: "",
};

function programLookups(): string[] {
  const found = new Set<string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".ts")) {
        for (const m of readFileSync(path, "utf8").matchAll(/\baws\.((?:[a-z0-9]+\.)?get[A-Za-z0-9]+?)(?:Output)?\(/g)) found.add(m[1]!);
      }
    }
  };
  for (const dir of ["src", "stages"]) walk(join(root, dir));
  for (const m of readFileSync(join(root, "index.ts"), "utf8").matchAll(/\baws\.((?:[a-z0-9]+\.)?get[A-Za-z0-9]+?)(?:Output)?\(/g)) found.add(m[1]!);
  return [...found].sort();
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

  it("trust: GitHub's OIDC provider, aud sts.amazonaws.com, sub pull_request for preview and environment:<env> per deploy role", () => {
    const expected: Record<string, string> = {
      "preview-trust.json": "repo:OWNER/REPO:pull_request",
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

  it("the preview role is read-only and allows exactly the program's lookups, the provider's identity call and the state reads", () => {
    const preview = read("preview-policy.json");
    assert.ok(preview.Statement.every((s) => s.Effect === "Allow"));
    for (const action of allowed(preview)) {
      assert.match(action, /^(ec2:Describe[A-Za-z]+|kms:DescribeKey|sts:GetCallerIdentity|s3:GetObject|s3:ListBucket)$/, `${action} is not a read`);
    }
    const lookups = programLookups();
    const unknown = lookups.filter((l) => !(l in LOOKUP_ACTIONS));
    assert.deepEqual(unknown, [], "a new lookup: add its IAM action to LOOKUP_ACTIONS and docs/iam/preview-policy.json");
    const needed = new Set(["sts:GetCallerIdentity", ...lookups.map((l) => LOOKUP_ACTIONS[l]!).filter(Boolean)]);
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
      for (const statement of iamStatements) {
        for (const resource of [statement.Resource ?? []].flat()) {
          assert.match(resource, new RegExp(`^arn:aws:iam::ACCOUNT_ID:(role/${env}-instance-role-\\*|instance-profile/${env}-instance-profile-\\*)$`), statement.Sid);
        }
      }
      const boundary = "arn:aws:iam::ACCOUNT_ID:policy/jira-images-instance-boundary";
      for (const action of ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"]) {
        const statement = iamStatements.find((s) => actions(s).includes(action));
        assert.equal(statement?.Condition?.StringEquals?.["iam:PermissionsBoundary"], boundary, `${action} only with the boundary`);
      }
      const attach = iamStatements.find((s) => actions(s).includes("iam:AttachRolePolicy"))!;
      assert.deepEqual(attach.Condition?.ArnEquals, { "iam:PolicyARN": "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore" });
      const pass = iamStatements.find((s) => actions(s).includes("iam:PassRole"))!;
      assert.deepEqual(actions(pass), ["iam:PassRole"]);
      assert.deepEqual(pass.Condition, { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } });
      const deny = deploy.Statement.find((s) => s.Effect === "Deny");
      assert.deepEqual(actions(deny!).sort(), ["iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary"]);
      // Packer's amazon-ebs minimum (hashicorp/packer-plugin-amazon docs/README.md) and the old-image removal.
      for (const action of ["ec2:RunInstances", "ec2:CreateImage", "ec2:RegisterImage", "ec2:CopyImage", "ec2:CreateKeyPair", "ec2:DeleteKeyPair", "ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:DeregisterImage", "ec2:DeleteSnapshot", "ec2:DescribeSnapshots", "ec2:ModifyImageAttribute"]) {
        assert.ok(allowed(deploy).includes(action), action);
      }
      const other = read(`deploy-${env === "dev" ? "prod" : "dev"}-policy.json`);
      assert.equal(JSON.stringify(deploy).replaceAll(`${env}-instance`, "ENV-instance"), JSON.stringify(other).replaceAll(/(dev|prod)-instance/g, "ENV-instance"), "dev and prod differ only in the role names");
    });
  }

  it("the boundary the deploy policies require is the one the program sets, and the instance-role names match", () => {
    const source = readFileSync(join(root, "src", "instances.ts"), "utf8");
    assert.match(source, /`\$\{name\}-instance-role`/);
    assert.match(source, /`\$\{name\}-instance-profile`/);
    assert.equal(INSTANCE_ROLE_BOUNDARY, "jira-images-instance-boundary");
    // What the boundary allows covers the instance role's own policy (names under jira-images/<env>/).
    const boundary = read("instance-boundary.json");
    assert.ok(allowed(boundary).includes("ssm:GetParameter") && allowed(boundary).includes("secretsmanager:GetSecretValue"));
    assert.ok(!allowed(boundary).some((a) => a.startsWith("iam:") || a === "*"), "the boundary grants no IAM");
  });
});
