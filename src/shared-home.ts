import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

/** NFS, the only port of an EFS mount target. */
export const NFS_PORT = 2049;

/**
 * The file system's policy: NFS clients (the image mounts as root, with TLS, without IAM) through a
 * mount target only, and nothing over an unencrypted connection.
 */
export function sharedHomePolicy(fileSystemArn: string): object {
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ClientsThroughMountTargets",
        Effect: "Allow",
        Principal: { AWS: "*" },
        Action: ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite", "elasticfilesystem:ClientRootAccess"],
        Resource: fileSystemArn,
        Condition: { Bool: { "elasticfilesystem:AccessedViaMountTarget": "true" } },
      },
      {
        Sid: "DenyUnencryptedTransport",
        Effect: "Deny",
        Principal: { AWS: "*" },
        Action: "*",
        Resource: fileSystemArn,
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      },
    ],
  };
}

export interface SharedHomeArgs {
  environment: string;
  vpcId: pulumi.Input<string>;
  /** One subnet per availability zone the instances run in: a mount target each. */
  subnetIds: pulumi.Output<string[]>;
  /** The instances' security group: the only one allowed to mount, and opened outbound to NFS. */
  instanceSecurityGroupId: pulumi.Input<string>;
  tags: Record<string, string>;
}

/**
 * The Jira Data Center shared home of a cluster: an encrypted EFS file system with automatic
 * backups that refuses unencrypted connections, a mount target in each of the instances' zones, reachable over NFS from the instances'
 * security group only. The image mounts it at start from JIRA_SHARED_HOME_EFS in launch.env.
 */
export class SharedHome extends pulumi.ComponentResource {
  readonly fileSystem: aws.efs.FileSystem;
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly mountTargets: pulumi.Output<aws.efs.MountTarget[]>;
  readonly dnsName: pulumi.Output<string>;

  constructor(name: string, args: SharedHomeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("jira-images:env:SharedHome", name, {}, opts);
    const child = { parent: this };
    this.fileSystem = new aws.efs.FileSystem(
      `${name}-shared-home`,
      { encrypted: true, performanceMode: "generalPurpose", throughputMode: "elastic", tags: { ...args.tags, Name: `${name}-shared-home` } },
      child,
    );
    new aws.efs.FileSystemPolicy(
      `${name}-shared-home-tls-only`,
      { fileSystemId: this.fileSystem.id, policy: this.fileSystem.arn.apply((arn) => JSON.stringify(sharedHomePolicy(arn))) },
      child,
    );
    new aws.efs.BackupPolicy(`${name}-shared-home-backup`, { fileSystemId: this.fileSystem.id, backupPolicy: { status: "ENABLED" } }, child);
    this.securityGroup = new aws.ec2.SecurityGroup(
      `${name}-shared-home`,
      { description: `Jira ${args.environment} shared home: NFS from the Jira instances only`, vpcId: args.vpcId, tags: { ...args.tags, Name: `${name}-shared-home` } },
      child,
    );
    new aws.vpc.SecurityGroupIngressRule(
      `${name}-shared-home-in-nfs`,
      {
        securityGroupId: this.securityGroup.id,
        ipProtocol: "tcp",
        fromPort: NFS_PORT,
        toPort: NFS_PORT,
        referencedSecurityGroupId: args.instanceSecurityGroupId,
        description: "NFS from the Jira instances",
        tags: args.tags,
      },
      child,
    );
    new aws.vpc.SecurityGroupEgressRule(
      `${name}-instances-out-nfs`,
      {
        securityGroupId: args.instanceSecurityGroupId,
        ipProtocol: "tcp",
        fromPort: NFS_PORT,
        toPort: NFS_PORT,
        referencedSecurityGroupId: this.securityGroup.id,
        description: "NFS to the shared home",
        tags: args.tags,
      },
      child,
    );
    // One mount target per zone; the zones are known only once the subnets are looked up (in a
    // preview too: lookups run then).
    this.mountTargets = args.subnetIds.apply((ids) =>
      ids.map(
        (subnetId) =>
          new aws.efs.MountTarget(`${name}-shared-home-${subnetId}`, { fileSystemId: this.fileSystem.id, subnetId, securityGroups: [this.securityGroup.id] }, child),
      ),
    );
    this.dnsName = this.fileSystem.dnsName;
    this.registerOutputs({ dnsName: this.dnsName });
  }
}
