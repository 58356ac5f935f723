import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { JiraImagesError } from "./errors.ts";
import { PROJECT } from "./config.ts";

export type SecretStore = "ssm" | "secretsmanager";

/**
 * The permissions boundary every instance role carries (docs/iam/instance-boundary.json, created
 * once per account by the platform team): the deploy role may create roles only with it, so it
 * cannot mint a role that can do more than an instance role.
 */
export const INSTANCE_ROLE_BOUNDARY = "jira-images-instance-boundary";

/** Where an environment's database password lives, as its image reads it at service start. */
export interface EnvironmentSecret {
  store: SecretStore;
  /** Parameter or secret name, e.g. /jira-images/dev/jira/db-password. */
  name: string;
}

/** Every name an environment's instances may read starts with this (no leading slash). */
export function secretPrefix(environment: string): string {
  return `${PROJECT}/${environment}/`;
}

/**
 * Reads the environment's secret store and name from its Chef role
 * (packer/chef/roles/jira-<env>.json, baked into the custom image), so that the instance role and
 * the VPC endpoints follow what the image actually reads. The name must be under the
 * environment's prefix: the instance role can read nothing else.
 */
export function environmentSecret(projectRoot: string, environment: string): EnvironmentSecret {
  const file = `packer/chef/roles/jira-${environment}.json`;
  const fail = (why: string): never => {
    throw new JiraImagesError("CONFIG_INVALID", `${file}: ${why}`);
  };
  let role: { default_attributes?: unknown; override_attributes?: unknown };
  try {
    role = JSON.parse(readFileSync(join(projectRoot, file), "utf8")) as typeof role;
  } catch (error) {
    return fail(`cannot read the environment's Chef role (${(error as Error).message}). Fix: add the role (see "Adding an environment" in the README)`);
  }
  const db = (attributes: unknown) => (attributes as { jira?: { db?: { password_store?: unknown; password_name?: unknown } } } | undefined)?.jira?.db;
  const store = db(role.override_attributes)?.password_store ?? db(role.default_attributes)?.password_store;
  const name = db(role.override_attributes)?.password_name ?? db(role.default_attributes)?.password_name;
  if (store !== "ssm" && store !== "secretsmanager") {
    return fail(`jira.db.password_store must be "ssm" or "secretsmanager", got ${JSON.stringify(store)}`);
  }
  const prefix = secretPrefix(environment);
  if (typeof name !== "string" || !name.replace(/^\//, "").startsWith(prefix) || name.replace(/^\//, "") === prefix) {
    return fail(`jira.db.password_name ${JSON.stringify(name)} must be a name under ${prefix} (the instance role reads nothing else)`);
  }
  return { store, name };
}

/**
 * What Session Manager needs on the instance (AWS's custom instance profile for Session Manager):
 * register the agent and open the session channels. Nothing else of AmazonSSMManagedInstanceCore,
 * which also allows ssm:GetParameter* on every parameter of the account.
 */
export function sessionManagerPolicy(): object {
  return {
    Version: "2012-10-17",
    Statement: [
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
    ],
  };
}

export interface SecretPolicyArgs {
  partition: string;
  /** DNS suffix of the partition, e.g. amazonaws.com (for kms:ViaService). */
  dnsSuffix: string;
  account: string;
  region: string;
  environment: string;
  store: SecretStore;
  /** Customer-managed key of the secret; empty: the AWS managed key, whose policy lets the service decrypt for the account. */
  kmsKeyArn: string;
}

/**
 * Reads of the environment's own secrets only: one store, names under its prefix, in the stack's
 * own account and region; with a customer-managed key, kms:Decrypt on that key only through that
 * store's service.
 */
export function secretReadPolicy(a: SecretPolicyArgs): object {
  const prefix = secretPrefix(a.environment);
  const read =
    a.store === "ssm"
      ? { Action: ["ssm:GetParameter"], Resource: `arn:${a.partition}:ssm:${a.region}:${a.account}:parameter/${prefix}*` }
      : { Action: ["secretsmanager:GetSecretValue"], Resource: `arn:${a.partition}:secretsmanager:${a.region}:${a.account}:secret:${prefix}*` };
  const statements: object[] = [{ Sid: "ReadOwnEnvironmentSecret", Effect: "Allow", ...read }];
  if (a.kmsKeyArn !== "") {
    statements.push({
      Sid: "DecryptThroughTheStoreOnly",
      Effect: "Allow",
      Action: ["kms:Decrypt"],
      Resource: a.kmsKeyArn,
      Condition: { StringEquals: { "kms:ViaService": `${a.store}.${a.region}.${a.dnsSuffix}` } },
    });
  }
  return { Version: "2012-10-17", Statement: statements };
}

export interface InstanceRoleArgs {
  environment: string;
  region: string;
  secret: EnvironmentSecret;
  kmsKeyArn: string;
  tags: Record<string, string>;
}

/** The instances' role and profile: Session Manager plus the environment's own secret. */
export class InstanceRole extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly profile: aws.iam.InstanceProfile;

  constructor(name: string, args: InstanceRoleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("jira-images:env:InstanceRole", name, {}, opts);
    const child = { parent: this };
    // The role and profile were children of the environment before this component existed.
    const moved = { parent: this, aliases: [{ parent: opts?.parent ?? pulumi.rootStackResource }] };
    const identity = aws.getCallerIdentityOutput({}, child);
    const partition = aws.getPartitionOutput({}, child);

    this.role = new aws.iam.Role(
      `${name}-instance-role`,
      {
        description: `Jira instances of ${args.environment}: Session Manager and ${args.environment}'s database secret only`,
        permissionsBoundary: pulumi.interpolate`arn:${partition.partition}:iam::${identity.accountId}:policy/${INSTANCE_ROLE_BOUNDARY}`,
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        tags: args.tags,
      },
      moved,
    );
    new aws.iam.RolePolicy(`${name}-session-manager`, { role: this.role.id, policy: JSON.stringify(sessionManagerPolicy()) }, child);
    new aws.iam.RolePolicy(
      `${name}-db-secret`,
      {
        role: this.role.id,
        policy: pulumi.all([identity.accountId, partition.partition, partition.dnsSuffix]).apply(([account, part, dnsSuffix]) =>
          JSON.stringify(
            secretReadPolicy({
              partition: part,
              dnsSuffix,
              account,
              region: args.region,
              environment: args.environment,
              store: args.secret.store,
              kmsKeyArn: args.kmsKeyArn,
            }),
          ),
        ),
      },
      child,
    );
    this.profile = new aws.iam.InstanceProfile(`${name}-instance-profile`, { role: this.role.name, tags: args.tags }, moved);
    this.registerOutputs({ roleArn: this.role.arn });
  }
}
