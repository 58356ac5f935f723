import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

/** Jira's status endpoint: 200 with {"state":"RUNNING"} once it serves requests. */
export const HEALTH_CHECK_PATH = "/status";
/** TLS 1.3 and 1.2 only (AWS's recommended policy for application load balancers). */
export const TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06";

export interface JiraLoadBalancerArgs {
  environment: string;
  vpcId: pulumi.Input<string>;
  subnetIds: pulumi.Input<pulumi.Input<string>[]>;
  internal: boolean;
  /** Who may reach the listeners; empty opens nothing. */
  allowedCidrs: readonly string[];
  /** HTTPS listener's ACM certificate; empty: no HTTPS listener. */
  certificateArn: string;
  /** Port 80 forwards to Jira; otherwise it redirects to HTTPS. */
  allowPlainHttp: boolean;
  jiraPort: number;
  /** The instances' security group: opened on jiraPort to the load balancer only. */
  instanceSecurityGroupId: pulumi.Input<string>;
  /** Sticky sessions (lb_cookie), which a Data Center cluster requires. */
  sticky: boolean;
  tags: Record<string, string>;
}

/** A resource name part from a CIDR block (`/` is awkward in URNs). */
export function cidrName(cidr: string): string {
  return cidr.replace("/", "_");
}

/**
 * The application load balancer in front of an environment's Jira: HTTPS with the configured
 * certificate, port 80 redirecting to it (or serving plain HTTP where configured), a target group
 * checking Jira's /status, and security groups that let allowedCidrs reach the listeners and only
 * the load balancer reach the instances.
 */
export class JiraLoadBalancer extends pulumi.ComponentResource {
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly loadBalancer: aws.lb.LoadBalancer;
  readonly targetGroup: aws.lb.TargetGroup;
  readonly dnsName: pulumi.Output<string>;
  private readonly args: JiraLoadBalancerArgs;

  constructor(name: string, args: JiraLoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("jira-images:env:JiraLoadBalancer", name, {}, opts);
    this.args = args;
    const child = { parent: this };
    const https = args.certificateArn !== "";
    const ports = [...(https ? [443] : []), 80];

    this.securityGroup = new aws.ec2.SecurityGroup(
      `${name}-lb`,
      { description: `Jira ${args.environment} load balancer: ${ports.join(", ")} from allowed CIDRs, Jira's port to the instances`, vpcId: args.vpcId, tags: { ...args.tags, Name: `${name}-lb` } },
      child,
    );
    for (const port of ports) {
      for (const cidr of args.allowedCidrs) {
        new aws.vpc.SecurityGroupIngressRule(
          `${name}-lb-in-${port}-${cidrName(cidr)}`,
          { securityGroupId: this.securityGroup.id, ipProtocol: "tcp", fromPort: port, toPort: port, cidrIpv4: cidr, description: port === 443 ? "HTTPS" : "HTTP", tags: args.tags },
          child,
        );
      }
    }
    new aws.vpc.SecurityGroupEgressRule(
      `${name}-lb-out-jira`,
      {
        securityGroupId: this.securityGroup.id,
        ipProtocol: "tcp",
        fromPort: args.jiraPort,
        toPort: args.jiraPort,
        referencedSecurityGroupId: args.instanceSecurityGroupId,
        description: "Jira on the instances",
        tags: args.tags,
      },
      child,
    );
    new aws.vpc.SecurityGroupIngressRule(
      `${name}-instances-in-jira`,
      {
        securityGroupId: args.instanceSecurityGroupId,
        ipProtocol: "tcp",
        fromPort: args.jiraPort,
        toPort: args.jiraPort,
        referencedSecurityGroupId: this.securityGroup.id,
        description: "Jira from the load balancer only",
        tags: args.tags,
      },
      child,
    );

    this.loadBalancer = new aws.lb.LoadBalancer(
      `${name}-lb`,
      {
        loadBalancerType: "application",
        internal: args.internal,
        securityGroups: [this.securityGroup.id],
        subnets: args.subnetIds,
        dropInvalidHeaderFields: true,
        tags: { ...args.tags, Name: `${name}-lb` },
      },
      child,
    );
    this.targetGroup = new aws.lb.TargetGroup(
      `${name}-jira`,
      {
        vpcId: args.vpcId,
        targetType: "instance",
        protocol: "HTTP",
        port: args.jiraPort,
        // Jira takes minutes to start; a node leaving gets time to finish its requests.
        deregistrationDelay: 60,
        healthCheck: {
          path: HEALTH_CHECK_PATH,
          protocol: "HTTP",
          port: "traffic-port",
          matcher: "200",
          interval: 30,
          timeout: 10,
          healthyThreshold: 2,
          unhealthyThreshold: 3,
        },
        stickiness: { type: "lb_cookie", enabled: args.sticky, cookieDuration: 86400 },
        tags: args.tags,
      },
      child,
    );
    const forward = [{ type: "forward", targetGroupArn: this.targetGroup.arn }];
    if (https) {
      new aws.lb.Listener(
        `${name}-https`,
        { loadBalancerArn: this.loadBalancer.arn, port: 443, protocol: "HTTPS", sslPolicy: TLS_POLICY, certificateArn: args.certificateArn, defaultActions: forward, tags: args.tags },
        child,
      );
    }
    new aws.lb.Listener(
      `${name}-http`,
      {
        loadBalancerArn: this.loadBalancer.arn,
        port: 80,
        protocol: "HTTP",
        defaultActions: args.allowPlainHttp
          ? forward
          : [{ type: "redirect", redirect: { protocol: "HTTPS", port: "443", statusCode: "HTTP_301" } }],
        tags: args.tags,
      },
      child,
    );
    this.dnsName = this.loadBalancer.dnsName;
    this.registerOutputs({ dnsName: this.dnsName });
  }

  /** Registers an instance as a target on Jira's port. */
  attach(name: string, instance: aws.ec2.Instance): aws.lb.TargetGroupAttachment {
    return new aws.lb.TargetGroupAttachment(
      `${name}-target`,
      { targetGroupArn: this.targetGroup.arn, targetId: instance.id, port: this.args.jiraPort },
      { parent: this },
    );
  }
}
