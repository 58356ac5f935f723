import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { PROJECT, type StackConfig } from "./config.ts";
import { InstanceRole, type EnvironmentSecret } from "./iam.ts";
import { JiraLoadBalancer, cidrName } from "./load-balancer.ts";
import { ServiceEndpoints, endpointServices, resolvePlacement, wantsEndpoints } from "./network.ts";
import { SharedHome } from "./shared-home.ts";
import { longestEfsDnsName, userDataWithinBudget, type LaunchSettings } from "./user-data.ts";

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
  /** The database secret the image reads (environmentSecret in iam.ts). */
  secret: EnvironmentSecret;
}

export interface InstanceSummary {
  name: string;
  id: string;
  privateIp: string;
  ami: string;
  subnetId: string;
}

/**
 * Ports cluster nodes replicate Jira's caches on (Ehcache RMI listener and object ports), as the
 * image configures them (packer/chef/cookbooks/jira/attributes/default.rb, node['jira']['cluster']).
 */
export const CLUSTER_CACHE_PORTS = [40001, 40011] as const;

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
 * One environment's Jira: instances launched from its custom image (IMDSv2 only, encrypted root
 * volume, no public IP unless configured, Session Manager instead of SSH) behind an application
 * load balancer; interface endpoints where they have no other way to SSM and their secret; and
 * with more than one instance a Data Center cluster on an EFS shared home with sticky sessions.
 * The instances' security group lets in only the load balancer on Jira's port (and, in a cluster,
 * the other nodes on the cache ports), and lets out HTTPS, the database, SMTP and the shared home.
 */
export class JiraEnvironment extends pulumi.ComponentResource {
  readonly instances: aws.ec2.Instance[] = [];
  readonly summary: pulumi.Output<InstanceSummary[]>;
  /** The load balancer's DNS name; undefined without instances. */
  readonly loadBalancerDnsName: pulumi.Output<string | undefined>;

  constructor(name: string, args: JiraEnvironmentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("jira-images:env:JiraEnvironment", name, {}, opts);
    const { config, image, secret } = args;
    const tags = environmentTags(config, image);
    const child = { parent: this };

    if (config.instanceCount === 0) {
      this.summary = pulumi.output([]);
      this.loadBalancerDnsName = pulumi.output(undefined);
      this.registerOutputs({ instances: this.summary });
      return;
    }
    const cluster = config.instanceCount > 1;
    const settings = (i: number, sharedHomeEfs?: string): LaunchSettings => ({
      hostname: instanceName(config.environment, i),
      environment: config.environment,
      jiraBaseUrl: config.jiraBaseUrl,
      sharedHomeEfs,
    });
    // Before any resource: the longest user data this environment can get must fit its budget.
    for (let i = 0; i < config.instanceCount; i++) {
      userDataWithinBudget(settings(i, cluster ? longestEfsDnsName(config.region) : undefined), config.userDataBudgetBytes);
    }

    const placement = resolvePlacement(config, child);
    const role = new InstanceRole(name, { environment: config.environment, region: config.region, secret, kmsKeyArn: config.secretsKmsKeyArn, tags }, child);

    const securityGroup = new aws.ec2.SecurityGroup(
      `${name}-instances`,
      { description: `Jira ${config.environment} instances: Jira from the load balancer; HTTPS, database, mail, shared home out`, vpcId: placement.vpcId, tags: { ...tags, Name: `${name}-instances` } },
      child,
    );
    const egress = (ruleName: string, port: number, cidr: string, description: string) =>
      new aws.vpc.SecurityGroupEgressRule(
        `${name}-out-${ruleName}`,
        { securityGroupId: securityGroup.id, ipProtocol: "tcp", fromPort: port, toPort: port, cidrIpv4: cidr, description, tags },
        child,
      );
    egress("https", 443, "0.0.0.0/0", "HTTPS (SSM, Secrets Manager, package repositories)");
    for (const cidr of config.databaseCidrs) egress(`db-${cidrName(cidr)}`, config.databasePort, cidr, "Jira database");
    for (const port of config.smtpPorts) egress(`smtp-${port}`, port, "0.0.0.0/0", "Jira mail (SMTP)");
    if (cluster) {
      for (const port of CLUSTER_CACHE_PORTS) {
        const rule = { securityGroupId: securityGroup.id, ipProtocol: "tcp", fromPort: port, toPort: port, referencedSecurityGroupId: securityGroup.id, tags };
        new aws.vpc.SecurityGroupIngressRule(`${name}-in-cache-${port}`, { ...rule, description: "Jira cluster cache replication from the other nodes" }, child);
        new aws.vpc.SecurityGroupEgressRule(`${name}-out-cache-${port}`, { ...rule, description: "Jira cluster cache replication to the other nodes" }, child);
      }
    }

    const endpoints = wantsEndpoints(config)
      ? new ServiceEndpoints(
          name,
          {
            vpcId: placement.vpcId,
            subnetIds: placement.zonalSubnetIds,
            clientSecurityGroupId: securityGroup.id,
            region: config.region,
            services: endpointServices(secret.store),
            tags,
          },
          child,
        )
      : undefined;
    const sharedHome = cluster
      ? new SharedHome(name, { environment: config.environment, vpcId: placement.vpcId, subnetIds: placement.zonalSubnetIds, instanceSecurityGroupId: securityGroup.id, tags }, child)
      : undefined;
    const loadBalancer = new JiraLoadBalancer(
      name,
      {
        environment: config.environment,
        vpcId: placement.vpcId,
        subnetIds: placement.loadBalancerSubnetIds,
        internal: config.loadBalancerInternal,
        allowedCidrs: config.allowedCidrs,
        certificateArn: config.certificateArn,
        allowPlainHttp: config.allowPlainHttp,
        jiraPort: config.jiraPort,
        instanceSecurityGroupId: securityGroup.id,
        sticky: cluster,
        tags,
      },
      child,
    );

    for (let i = 0; i < config.instanceCount; i++) {
      const hostname = instanceName(config.environment, i);
      const userData: pulumi.Input<string> = sharedHome
        ? sharedHome.dnsName.apply((dns) => userDataWithinBudget(settings(i, dns), config.userDataBudgetBytes))
        : userDataWithinBudget(settings(i), config.userDataBudgetBytes);
      // At boot the instance needs its endpoints (SSM, the secret) and, in a cluster, the shared home.
      const dependsOn: pulumi.Input<pulumi.Input<pulumi.Resource>[]> = pulumi
        .output(sharedHome?.mountTargets ?? [])
        .apply((targets) => [...(endpoints?.endpoints ?? []), ...targets]);
      const instance = new aws.ec2.Instance(
        hostname,
        {
          ami: image.amiId,
          instanceType: config.instanceType,
          subnetId: placement.instanceSubnetIds.apply((ids) => ids[i % ids.length]!),
          vpcSecurityGroupIds: [securityGroup.id],
          iamInstanceProfile: role.profile.name,
          associatePublicIpAddress: config.associatePublicIp,
          metadataOptions: { httpTokens: "required", httpEndpoint: "enabled", httpPutResponseHopLimit: 1 },
          rootBlockDevice: { encrypted: true, volumeType: "gp3", volumeSize: config.rootVolumeSizeGb, deleteOnTermination: true },
          userData,
          // Boot-time settings take effect only on a fresh instance.
          userDataReplaceOnChange: true,
          tags: { ...tags, Name: hostname },
          volumeTags: { ...tags, Name: hostname },
        },
        { ...child, dependsOn },
      );
      loadBalancer.attach(hostname, instance);
      this.instances.push(instance);
    }

    this.loadBalancerDnsName = loadBalancer.dnsName;
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
    this.registerOutputs({ instances: this.summary, loadBalancerDnsName: this.loadBalancerDnsName });
  }
}
