import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { JiraImagesError } from "./errors.ts";
import type { StackConfig } from "./config.ts";
import type { SecretStore } from "./iam.ts";

export interface SubnetZone {
  id: string;
  availabilityZone: string;
}

/** Where an environment's resources go. Subnet lists are sorted so that a lookup never reorders instances. */
export interface Placement {
  vpcId: pulumi.Output<string>;
  /** Whether the instances run in the region's default VPC (public subnets, no NAT). */
  defaultVpc: boolean;
  /** Subnets the instances are spread over, round robin. */
  instanceSubnetIds: pulumi.Output<string[]>;
  /** One of the instances' subnets per availability zone: EFS mount targets and VPC endpoints. */
  zonalSubnetIds: pulumi.Output<string[]>;
  /** The load balancer's subnets: one per zone, in at least two zones. */
  loadBalancerSubnetIds: pulumi.Output<string[]>;
}

/** The first subnet of each availability zone, in the given order. */
export function onePerZone(subnets: readonly SubnetZone[]): string[] {
  const seen = new Set<string>();
  return subnets.filter((s) => !seen.has(s.availabilityZone) && seen.add(s.availabilityZone)).map((s) => s.id);
}

/**
 * An application load balancer takes one subnet per zone, in two zones at least: throws
 * NETWORK_INVALID naming the setting to change otherwise.
 */
export function loadBalancerSubnets(subnets: readonly SubnetZone[], source: string, fix: string): string[] {
  const zones = new Map<string, string[]>();
  for (const s of subnets) zones.set(s.availabilityZone, [...(zones.get(s.availabilityZone) ?? []), s.id]);
  const crowded = [...zones].find(([, ids]) => ids.length > 1);
  if (source === "loadBalancerSubnetIds" && crowded) {
    throw new JiraImagesError(
      "NETWORK_INVALID",
      `${source} has ${crowded[1].length} subnets in ${crowded[0]} (${crowded[1].join(", ")}); a load balancer takes one per availability zone. Fix: ${fix}`,
    );
  }
  if (zones.size < 2) {
    throw new JiraImagesError(
      "NETWORK_INVALID",
      `the load balancer needs subnets in at least two availability zones, but the ${source} are all in ${[...zones.keys()].join(", ") || "no zone"}. Fix: ${fix}`,
    );
  }
  return onePerZone(subnets);
}

function zonesOf(ids: pulumi.Output<string[]>, opts: pulumi.InvokeOptions): pulumi.Output<SubnetZone[]> {
  return ids.apply((list) =>
    Promise.all(list.map((id) => aws.ec2.getSubnet({ id }, opts).then((s) => ({ id: s.id, availabilityZone: s.availabilityZone })))),
  );
}

/**
 * Resolves the VPC and subnets: the configured ones, or the region's default VPC and its default
 * subnets (one per zone).
 */
export function resolvePlacement(config: StackConfig, opts: { parent: pulumi.Resource }): Placement {
  const file = `Pulumi.${config.stack}.yaml`;
  const defaultVpc = config.vpcId === "";
  const vpcId: pulumi.Output<string> = defaultVpc ? aws.ec2.getVpcOutput({ default: true }, opts).id : pulumi.output(config.vpcId);
  const instanceSubnetIds: pulumi.Output<string[]> =
    config.subnetIds.length > 0
      ? pulumi.output([...config.subnetIds])
      : aws.ec2
          .getSubnetsOutput(
            { filters: [{ name: "vpc-id", values: [vpcId] }, ...(defaultVpc ? [{ name: "default-for-az", values: ["true"] }] : [])] },
            opts,
          )
          .ids.apply((ids) => {
            if (ids.length === 0) {
              throw new JiraImagesError(
                "NETWORK_INVALID",
                `environment ${config.environment}: the VPC has no subnets. Fix: set jira-images:subnetIds (and jira-images:vpcId) in ${file}`,
              );
            }
            return [...ids].sort();
          });
  const instanceZones = zonesOf(instanceSubnetIds, opts);
  const loadBalancerSubnetIds =
    config.loadBalancerSubnetIds.length > 0
      ? zonesOf(pulumi.output([...config.loadBalancerSubnetIds]), opts).apply((zones) =>
          loadBalancerSubnets(zones, "loadBalancerSubnetIds", `list one subnet in each of two or more zones in jira-images:loadBalancerSubnetIds in ${file}`),
        )
      : instanceZones.apply((zones) =>
          loadBalancerSubnets(zones, "instances' subnets", `set jira-images:subnetIds to subnets in two or more zones, or jira-images:loadBalancerSubnetIds, in ${file}`),
        );
  return { vpcId, defaultVpc, instanceSubnetIds, zonalSubnetIds: instanceZones.apply(onePerZone), loadBalancerSubnetIds };
}

/** Endpoint services an environment's instances need: Session Manager, and the store of their secret. */
export function endpointServices(store: SecretStore): string[] {
  // ssm: agent registration and Parameter Store; ssmmessages: Session Manager's channels (and the
  // agent's messages since agent 3.3.40, so no ec2messages endpoint). KMS is called by the store.
  return ["ssm", "ssmmessages", ...(store === "secretsmanager" ? ["secretsmanager"] : [])];
}

/** Whether the environment gets its own interface endpoints (config vpcEndpoints). */
export function wantsEndpoints(config: Pick<StackConfig, "vpcEndpoints" | "vpcId">): boolean {
  return config.vpcEndpoints === "always" || (config.vpcEndpoints === "auto" && config.vpcId === "");
}

export interface ServiceEndpointsArgs {
  vpcId: pulumi.Input<string>;
  subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  /** Only this security group (the instances') may connect. */
  clientSecurityGroupId: pulumi.Input<string>;
  region: string;
  services: readonly string[];
  tags: Record<string, string>;
}

/**
 * Interface endpoints with private DNS, so that instances without a public IP or a NAT reach
 * Session Manager and their secret store: HTTPS in from the instances' security group only.
 */
export class ServiceEndpoints extends pulumi.ComponentResource {
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly endpoints: aws.ec2.VpcEndpoint[];

  constructor(name: string, args: ServiceEndpointsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("jira-images:env:ServiceEndpoints", name, {}, opts);
    const child = { parent: this };
    this.securityGroup = new aws.ec2.SecurityGroup(
      `${name}-endpoints`,
      { description: `${name}: HTTPS to the AWS service endpoints from the Jira instances only`, vpcId: args.vpcId, tags: { ...args.tags, Name: `${name}-endpoints` } },
      child,
    );
    new aws.vpc.SecurityGroupIngressRule(
      `${name}-endpoints-in-https`,
      {
        securityGroupId: this.securityGroup.id,
        ipProtocol: "tcp",
        fromPort: 443,
        toPort: 443,
        referencedSecurityGroupId: args.clientSecurityGroupId,
        description: "HTTPS from the Jira instances",
        tags: args.tags,
      },
      child,
    );
    const prefix = aws.getPartitionOutput({}, child).reverseDnsPrefix;
    this.endpoints = args.services.map(
      (service) =>
        new aws.ec2.VpcEndpoint(
          `${name}-${service}`,
          {
            vpcId: args.vpcId,
            serviceName: pulumi.interpolate`${prefix}.${args.region}.${service}`,
            vpcEndpointType: "Interface",
            privateDnsEnabled: true,
            subnetIds: args.subnetIds,
            securityGroupIds: [this.securityGroup.id],
            tags: { ...args.tags, Name: `${name}-${service}` },
          },
          child,
        ),
    );
    this.registerOutputs({});
  }
}
