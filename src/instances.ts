import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { JiraImagesError } from "./errors.ts";
import { PROJECT, type StackConfig } from "./config.ts";
import { userDataWithinBudget } from "./user-data.ts";

/** SSM Session Manager instead of SSH keys: no key pair, no port 22. */
export const SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore";
/**
 * The permissions boundary every instance role carries (docs/iam/instance-boundary.json, created by
 * the platform team): the deploy role may create roles only with it, so it cannot mint a role that
 * is more than an instance role.
 */
export const INSTANCE_ROLE_BOUNDARY = "jira-images-instance-boundary";

export interface EnvironmentImage {
  /** Leaf stage the instances run, e.g. custom-dev. */
  stage: string;
  /** Stages from the root to the leaf, e.g. ["base", "jira", "custom-dev"]. */
  lineage: readonly string[];
  amiId: pulumi.Input<string>;
  inputsHash: string;
}

export interface JiraEnvironmentArgs {
  config: StackConfig;
  image: EnvironmentImage;
}

export interface InstanceSummary {
  name: string;
  id: string;
  privateIp: string;
  ami: string;
  subnetId: string;
}

/**
 * The instances read Jira's database password at service start, by name, from SSM Parameter Store
 * or Secrets Manager (packer/chef/roles/jira-<env>.json): only names under `jira-images/<env>/`,
 * so dev can never read prod's. The account is `*` because an identity policy only reaches its
 * own account's secrets unless another account's resource policy also allows it.
 */
function dbSecretPolicy(config: Pick<StackConfig, "region" | "environment">): object {
  const prefix = `${PROJECT}/${config.environment}/`;
  return {
    Version: "2012-10-17",
    Statement: [
      { Effect: "Allow", Action: ["ssm:GetParameter"], Resource: `arn:aws:ssm:${config.region}:*:parameter/${prefix}*` },
      { Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: `arn:aws:secretsmanager:${config.region}:*:secret:${prefix}*` },
    ],
  };
}

/** Name of the i-th instance of an environment (also its hostname). */
function instanceName(environment: string, index: number): string {
  return `jira-${environment}-${index + 1}`;
}

/** Tags every resource of an environment carries: ownership plus the image lineage. */
function environmentTags(config: StackConfig, image: EnvironmentImage): Record<string, string> {
  return {
    ...config.tags,
    Project: PROJECT,
    Stack: config.stack,
    Environment: config.environment,
    Stage: image.stage,
    StageLineage: image.lineage.join(">"),
    InputsHash: image.inputsHash,
    ManagedBy: "pulumi",
  };
}

/**
 * The EC2 instances of one environment, launched from its custom image: IMDSv2 only, encrypted
 * root volume, no public IP unless configured, reachable through SSM (no SSH key), and a
 * security group that opens only Jira's port to the configured CIDRs, and outbound only HTTPS
 * and the database port to the database's CIDRs.
 */
export class JiraEnvironment extends pulumi.ComponentResource {
  readonly instances: aws.ec2.Instance[];
  readonly summary: pulumi.Output<InstanceSummary[]>;

  constructor(name: string, args: JiraEnvironmentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("jira-images:env:JiraEnvironment", name, {}, opts);
    const { config, image } = args;
    const tags = environmentTags(config, image);
    const child = { parent: this };
    this.instances = [];

    if (config.instanceCount === 0) {
      this.summary = pulumi.output([]);
      this.registerOutputs({ instances: this.summary });
      return;
    }

    const vpcId: pulumi.Output<string> =
      config.vpcId !== "" ? pulumi.output(config.vpcId) : aws.ec2.getVpcOutput({ default: true }, child).id;
    const subnetIds: pulumi.Output<string[]> =
      config.subnetIds.length > 0
        ? pulumi.output([...config.subnetIds])
        : aws.ec2.getSubnetsOutput({ filters: [{ name: "vpc-id", values: [vpcId] }] }, child).ids.apply((ids) => {
            if (ids.length === 0) {
              throw new JiraImagesError(
                "NETWORK_INVALID",
                `environment ${config.environment}: the VPC has no subnets. Fix: set jira-images:subnetIds (and jira-images:vpcId) in Pulumi.${config.stack}.yaml`,
              );
            }
            return [...ids].sort();
          });

    // The caller's own account and partition (arn:<partition>:sts::<account>:...).
    const caller = aws.getCallerIdentityOutput({}, child);
    const boundaryArn = pulumi.interpolate`arn:${caller.arn.apply((arn) => arn.split(":")[1])}:iam::${caller.accountId}:policy/${INSTANCE_ROLE_BOUNDARY}`;
    const role = new aws.iam.Role(
      `${name}-instance-role`,
      {
        description: `Jira instances of ${config.environment} (SSM managed)`,
        permissionsBoundary: boundaryArn,
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "ec2.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        tags,
      },
      child,
    );
    new aws.iam.RolePolicyAttachment(`${name}-ssm-core`, { role: role.name, policyArn: SSM_POLICY_ARN }, child);
    new aws.iam.RolePolicy(`${name}-db-secret`, { role: role.id, policy: JSON.stringify(dbSecretPolicy(config)) }, child);
    const profile = new aws.iam.InstanceProfile(`${name}-instance-profile`, { role: role.name, tags }, child);

    const securityGroup = new aws.ec2.SecurityGroup(
      `${name}-jira`,
      {
        description: `Jira ${config.environment}: HTTP from allowed CIDRs; HTTPS (SSM, packages) and the database out`,
        vpcId,
        ingress: config.allowedCidrs.length
          ? [{ protocol: "tcp", fromPort: config.jiraPort, toPort: config.jiraPort, cidrBlocks: [...config.allowedCidrs], description: "Jira HTTP" }]
          : [],
        egress: [
          { protocol: "tcp", fromPort: 443, toPort: 443, cidrBlocks: ["0.0.0.0/0"], description: "HTTPS (SSM, package repositories)" },
          ...(config.databaseCidrs.length
            ? [{ protocol: "tcp", fromPort: config.databasePort, toPort: config.databasePort, cidrBlocks: [...config.databaseCidrs], description: "Jira database" }]
            : []),
        ],
        tags: { ...tags, Name: `${name}-jira` },
      },
      child,
    );

    for (let i = 0; i < config.instanceCount; i++) {
      const hostname = instanceName(config.environment, i);
      const userData = userDataWithinBudget(
        { hostname, environment: config.environment, jiraBaseUrl: config.jiraBaseUrl },
        config.userDataBudgetBytes,
      );
      this.instances.push(
        new aws.ec2.Instance(
          hostname,
          {
            ami: image.amiId,
            instanceType: config.instanceType,
            subnetId: subnetIds.apply((ids) => ids[i % ids.length]!),
            vpcSecurityGroupIds: [securityGroup.id],
            iamInstanceProfile: profile.name,
            associatePublicIpAddress: config.associatePublicIp,
            metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1 },
            rootBlockDevice: { encrypted: true, volumeType: "gp3", volumeSize: config.rootVolumeSizeGb, deleteOnTermination: true },
            userData,
            // Boot-time settings take effect only on a fresh instance.
            userDataReplaceOnChange: true,
            tags: { ...tags, Name: hostname },
            volumeTags: { ...tags, Name: hostname },
          },
          child,
        ),
      );
    }

    this.summary = pulumi.all(
      this.instances.map((instance, i) =>
        pulumi.all([instance.id, instance.privateIp, instance.ami, instance.subnetId]).apply(([id, privateIp, ami, subnetId]) => ({
          name: instanceName(config.environment, i),
          id,
          privateIp,
          ami,
          subnetId,
        })),
      ),
    );
    this.registerOutputs({ instances: this.summary });
  }
}
