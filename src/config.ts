import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { JiraImagesError } from "./errors.ts";
import { shellQuote } from "./shell.ts";
import { AmiIdSchema, RegionSchema } from "./runner/result.ts";

/** Pulumi project name: the config namespace and the middle of every stack reference name. */
export const PROJECT = "jira-images";

/** Hard AWS limit on EC2 user data (raw, before base64). */
export const USER_DATA_HARD_LIMIT_BYTES = 16 * 1024;

type Kind = "string" | "integer" | "boolean" | "array" | "object";

interface Setting<T> {
  kind: Kind;
  /** Item type of an array (Pulumi.yaml `items:`); string unless said. */
  items?: "string" | "integer";
  description: string;
  /** Absent means required: the stack file must set it. Mirrored by `default:` in Pulumi.yaml. */
  default?: T;
  /** What a valid value looks like, used in the error message. */
  expect: string;
  /** A valid value for the `pulumi config set` hint. */
  example: string;
  schema: z.ZodType<T>;
  /** Shows a rejected raw value in the error without what must not be printed (credentials). */
  redact?: (raw: string) => string;
  /** Says which part of a rejected object is wrong (appended to the error). */
  detail?: (decoded: unknown) => string;
}

function setting<T>(s: Setting<T>): Setting<T> {
  return s;
}

const label = /^[a-z][a-z0-9-]{0,30}[a-z0-9]$/;
const instanceType = /^[a-z][a-z0-9-]*\.[a-z0-9]+$/;
const cidr = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d|[12]\d|3[0-2])$/;
const tagPair = /^[^=\s][^=]{0,127}=[^\n]{0,256}$/;

function isCidr(value: string): boolean {
  const m = cidr.exec(value);
  return m !== null && m.slice(1, 5).every((octet) => Number(octet) <= 255);
}

/**
 * A KMS key as the amazon plugin accepts it (its ValidateKmsKey): a key ID, `mrk-…`, `alias/<name>`,
 * or a key or alias ARN. Checked here so that a typo fails before any build.
 */
const KMS_KEY_ID = "(?:mrk-)?[a-f0-9][a-f0-9-]+";
const KMS_ALIAS = "alias/[a-zA-Z0-9:/_-]+";
const KMS_ARN = "arn:aws(?:-[a-z]{2}(?:-gov)?)?:kms:(?:[a-z]{2}-(?:gov-)?[a-z]+-\\d)?:\\d{12}:";
const KMS_KEY = new RegExp(`^(?:${KMS_KEY_ID}|${KMS_ALIAS}|${KMS_ARN}(?:key/${KMS_KEY_ID}|${KMS_ALIAS}))$`);

export function isKmsKey(value: string): boolean {
  return KMS_KEY.test(value);
}

/** `region=key` pairs of regionKmsKeyIds, as a map (the setting is a list: Pulumi.yaml has no map type). */
export function regionKmsKeyMap(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(pairs.map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
}

/** A list of CIDR blocks: allowedCidrs and databaseCidrs are checked and explained alike. */
function cidrListSetting(description: string): Setting<string[]> {
  return setting({
    kind: "array",
    description,
    default: [] as string[],
    expect: 'a list of IPv4 CIDR blocks such as ["10.0.0.0/16"]',
    example: '["10.0.0.0/16"]',
    schema: z.array(z.string().refine(isCidr)),
  });
}

function portSetting(description: string, defaultPort: number): Setting<number> {
  return setting({
    kind: "integer",
    description,
    default: defaultPort,
    expect: "a TCP port from 1 to 65535",
    example: String(defaultPort),
    schema: z.int().min(1).max(65535),
  });
}

/**
 * Characters a launch setting may never hold: user data writes values into launch.env verbatim,
 * one `KEY=value` per line, which the image and systemd's EnvironmentFile read as data. Quotes,
 * backslashes and `$` would be interpreted by systemd; control characters would split lines.
 */
export const LAUNCH_UNSAFE = /[\u0000-\u001f\u007f\s'"`$\\]/;

/**
 * An http(s) URL (WHATWG URL parser) with a host, without `user:password@` (credentials would end
 * up in user data and in every link Jira builds) and without LAUNCH_UNSAFE characters.
 * Query strings such as `?a=1&b=2` are fine: the value is data, never shell.
 */
export function isLaunchUrl(value: string): boolean {
  if (!/^https?:\/\//.test(value) || LAUNCH_UNSAFE.test(value)) return false;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return url.hostname !== "" && url.username === "" && url.password === "";
}

/** `scheme://user:password@host` shown as `scheme://***@host`. */
function redactUserinfo(raw: string): string {
  return raw.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^?#]*@/, "$1***@");
}

const ACM_CERTIFICATE_ARN = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[0-9a-f-]{36}$/;
const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:key\/(mrk-[0-9a-f]{32}|[0-9a-f-]{36})$/;

/** Region of an ACM or KMS ARN (the fourth field). */
function arnRegion(arn: string): string {
  return arn.split(":")[3]!;
}

/**
 * A stack as a StackReference names it: `dev` (this project, this organization) or
 * `org/project/stack` (Pulumi's own name rules: letters, digits, `-`, `_`, `.`).
 */
const STACK_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
const QUALIFIED_STACK_NAME = /^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/;

/**
 * The promotion pin (`jira-images:promoted`): this stack takes `stage` (and its ancestors) from
 * stack `fromStack` instead of building them, at AMI `amiId`. Without `amiId` nothing is promoted
 * yet (`npm run pipeline -- promote` writes it); the program then refuses to run.
 */
export const PromotedPinSchema = z.strictObject({
  fromStack: z
    .string()
    .refine((s) => STACK_NAME.test(s) || QUALIFIED_STACK_NAME.test(s), "not a stack name (dev) or org/project/stack"),
  stage: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, "not a stage name (e.g. jira)"),
  amiId: AmiIdSchema.optional(),
});

export type PromotedPin = z.infer<typeof PromotedPinSchema>;

/** `{}` (Pulumi.yaml's default): no promotion, the stack builds its whole chain. */
const PromotedSettingSchema = z.union([z.strictObject({}), PromotedPinSchema]);

/** One line of zod issues: `path: message; …`. */
function zodIssues(error: z.ZodError, prefix: string): string {
  return error.issues.map((i) => `${[prefix, ...i.path.map(String)].join(".")}: ${i.message}`).join("; ");
}

/** The pin a stack's `promoted` value holds, or undefined for `{}` (no promotion). */
export function promotedPin(value: PromotedPin | Record<string, never>): PromotedPin | undefined {
  return "fromStack" in value ? (value as PromotedPin) : undefined;
}

/** Whether `fromStack` names `stack` of this project itself (a stack cannot promote from itself). */
export function isSameStack(fromStack: string, stack: string): boolean {
  const parts = fromStack.split("/");
  return parts.length === 1 ? fromStack === stack : parts[1] === PROJECT && parts[2] === stack;
}

/**
 * Every setting of the project namespace. Pulumi.yaml declares the same keys, kinds and defaults
 * (a test keeps them in step), because the CLI applies those defaults but Pulumi's test mocks do not.
 */
export const SETTINGS = {
  region: setting({
    kind: "string",
    description: "AWS region where images are built and instances run.",
    expect: "an AWS region name",
    example: "eu-west-1",
    schema: RegionSchema,
  }),
  amiRegions: setting({
    kind: "array",
    description: "Extra regions each image is copied to (Packer ami_regions), besides region.",
    default: [] as string[],
    expect: "a list of AWS region names",
    example: '["eu-central-1"]',
    schema: z.array(RegionSchema),
  }),
  kmsKeyId: setting({
    kind: "string",
    description: "KMS key encrypting every image in region (ID, alias/<name> or ARN); empty uses aws/ebs, whose images cannot be shared with other accounts.",
    default: "",
    expect: 'a KMS key ID, alias/<name> or key ARN, or ""',
    example: "alias/jira-images",
    schema: z.union([z.literal(""), z.string().max(2048).refine(isKmsKey)]),
  }),
  regionKmsKeyIds: setting({
    kind: "array",
    description: 'KMS key of each amiRegions copy, as "region=key" strings; required for every copy region when kmsKeyId is set.',
    default: [] as string[],
    expect: 'a list of "region=key" strings such as ["eu-central-1=alias/jira-images"]',
    example: '["eu-central-1=alias/jira-images"]',
    schema: z.array(
      z.string().refine((pair) => {
        const eq = pair.indexOf("=");
        return eq > 0 && RegionSchema.safeParse(pair.slice(0, eq)).success && isKmsKey(pair.slice(eq + 1));
      }),
    ),
  }),
  sourceAmi: setting({
    kind: "string",
    description: "Pinned source AMI for the base stage; empty uses sourceAmiOwners + sourceAmiNameFilter.",
    default: "",
    expect: 'an AMI ID (ami-xxxxxxxx) or ""',
    example: "ami-0123456789abcdef0",
    schema: z.union([z.literal(""), AmiIdSchema]),
  }),
  sourceAmiOwners: setting({
    kind: "array",
    description: "Owners of the source OS image (used when sourceAmi is empty).",
    default: ["amazon"],
    expect: 'a non-empty list of owner aliases or account IDs, e.g. ["amazon"]',
    example: '["amazon"]',
    schema: z.array(z.string().regex(/^(amazon|aws-marketplace|self|\d{12})$/)).min(1),
  }),
  sourceAmiNameFilter: setting({
    kind: "string",
    description: "Name filter of the source OS image (newest match wins).",
    default: "al2023-ami-2023.*-x86_64",
    expect: "a non-empty AMI name pattern",
    example: "al2023-ami-2023.*-x86_64",
    schema: z.string().min(1).max(128),
  }),
  resolveSourceAmi: setting({
    kind: "boolean",
    description:
      "Resolve the base stage's source OS image (newest match of sourceAmiOwners + sourceAmiNameFilter) at preview time and make it a base input: a newly published OS image shows in the preview as a base trigger change and rebuilds the chain. Off: Packer resolves the filter at build time and nothing rebuilds for a new OS image.",
    default: false,
    expect: "true or false",
    example: "true",
    schema: z.boolean(),
  }),
  sshUsername: setting({
    kind: "string",
    description: "SSH user Packer connects as on the build instance (depends on the OS).",
    default: "ec2-user",
    expect: "a Unix user name",
    example: "ec2-user",
    schema: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/),
  }),
  jiraVersion: setting({
    kind: "string",
    description: "Jira Software version; the installer packer/files/atlassian-jira-software-<version>.tar.gz must exist.",
    default: "9.12.15",
    expect: "a version such as 9.12.15",
    example: "9.12.15",
    schema: z.string().regex(/^\d+\.\d+\.\d+$/),
  }),
  buildInstanceType: setting({
    kind: "string",
    description: "EC2 instance type of Packer's temporary build instance.",
    default: "t3.medium",
    expect: "an EC2 instance type",
    example: "t3.medium",
    schema: z.string().regex(instanceType),
  }),
  instanceType: setting({
    kind: "string",
    description: "EC2 instance type of the environment's Jira instances.",
    default: "t3.large",
    expect: "an EC2 instance type",
    example: "t3.large",
    schema: z.string().regex(instanceType),
  }),
  environment: setting({
    kind: "string",
    description: "Environment name; its image is built by stage custom-<environment>.",
    expect: "a lower-case name such as dev or prod",
    example: "dev",
    schema: z.string().regex(label),
  }),
  chefNode: setting({
    kind: "string",
    description: "Chef node of the environment (packer/chef/nodes/<chefNode>.json), the old TARGET_NODE.",
    expect: "a Chef node name such as dev",
    example: "dev",
    schema: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/),
  }),
  instanceCount: setting({
    kind: "integer",
    description: "Number of Jira instances launched from the environment's image (0: build images only).",
    default: 1,
    expect: "an integer from 0 to 20",
    example: "1",
    schema: z.int().min(0).max(20),
  }),
  vpcId: setting({
    kind: "string",
    description: "VPC of the instances; empty uses the region's default VPC.",
    default: "",
    expect: 'a VPC ID (vpc-xxxxxxxx) or ""',
    example: "vpc-0123456789abcdef0",
    schema: z.union([z.literal(""), z.string().regex(/^vpc-[0-9a-f]{8,17}$/)]),
  }),
  subnetIds: setting({
    kind: "array",
    description: "Subnets the instances are spread over (round robin); empty uses the VPC's subnets.",
    default: [] as string[],
    expect: "a list of subnet IDs (subnet-xxxxxxxx)",
    example: '["subnet-0123456789abcdef0"]',
    schema: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/)),
  }),
  associatePublicIp: setting({
    kind: "boolean",
    description: "Give the instances a public IP address (off by default: reach them through SSM).",
    default: false,
    expect: "true or false",
    example: "false",
    schema: z.boolean(),
  }),
  allowedCidrs: cidrListSetting("CIDR blocks allowed to reach Jira's HTTP port; empty allows nobody."),
  jiraPort: portSetting("TCP port Jira listens on.", 8080),
  databaseCidrs: cidrListSetting("CIDR blocks of Jira's database, opened outbound on databasePort; empty opens nothing."),
  databasePort: portSetting("TCP port of Jira's database (PostgreSQL: 5432).", 5432),
  jiraBaseUrl: setting({
    kind: "string",
    description: "Jira base URL handed to the instances in user data; empty leaves it unset.",
    default: "",
    expect: 'an http(s) URL with a host and without user:password@, spaces, quotes, backslashes or $, or ""',
    example: "https://jira.example.com",
    schema: z.union([z.literal(""), z.string().max(512).refine(isLaunchUrl)]),
    redact: redactUserinfo,
  }),
  vpcEndpoints: setting({
    kind: "string",
    description:
      "Interface endpoints (SSM, Session Manager, Secrets Manager) for instances without another route to AWS: auto creates them in the default VPC only, always in any VPC, never not at all.",
    default: "auto",
    expect: "auto, always or never",
    example: "auto",
    schema: z.enum(["auto", "always", "never"]),
  }),
  secretsKmsKeyArn: setting({
    kind: "string",
    description:
      "Customer-managed KMS key encrypting this environment's database secret; empty: the AWS managed key (aws/ssm or aws/secretsmanager).",
    default: "",
    expect: 'a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>) in the stack\'s region, or ""',
    example: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    schema: z.union([z.literal(""), z.string().regex(KMS_KEY_ARN)]),
  }),
  certificateArn: setting({
    kind: "string",
    description: "ACM certificate of the load balancer's HTTPS listener; empty: no HTTPS (needs allowPlainHttp).",
    default: "",
    expect: 'an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>) in the stack\'s region, or ""',
    example: "arn:aws:acm:eu-west-1:123456789012:certificate/1234abcd-12ab-34cd-56ef-1234567890ab",
    schema: z.union([z.literal(""), z.string().regex(ACM_CERTIFICATE_ARN)]),
  }),
  allowPlainHttp: setting({
    kind: "boolean",
    description: "Serve Jira over plain HTTP on port 80 of the load balancer (otherwise port 80 only redirects to HTTPS).",
    default: false,
    expect: "true or false",
    example: "false",
    schema: z.boolean(),
  }),
  loadBalancerInternal: setting({
    kind: "boolean",
    description: "Internal load balancer (reachable inside the VPC and connected networks only); false makes it internet-facing.",
    default: true,
    expect: "true or false",
    example: "true",
    schema: z.boolean(),
  }),
  loadBalancerSubnetIds: setting({
    kind: "array",
    description: "Subnets of the load balancer, in at least two availability zones; empty uses the instances' subnets.",
    default: [] as string[],
    expect: "a list of subnet IDs (subnet-xxxxxxxx)",
    example: '["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]',
    schema: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/)),
  }),
  smtpPorts: setting({
    kind: "array",
    items: "integer",
    description: "TCP ports opened outbound for Jira's mail (e.g. [587]); empty opens none.",
    default: [] as number[],
    expect: "a list of TCP ports from 1 to 65535, e.g. [587]",
    example: "[587]",
    schema: z.array(z.int().min(1).max(65535)),
  }),
  blockPublicImageSharing: setting({
    kind: "boolean",
    description:
      "Turn on the account-wide block of public AMI and EBS snapshot sharing in the build and copy regions (enable it in one stack per account).",
    default: false,
    expect: "true or false",
    example: "true",
    schema: z.boolean(),
  }),
  rootVolumeSizeGb: setting({
    kind: "integer",
    description: "Size of the instances' encrypted root volume in GiB (at least the image's size).",
    default: 30,
    expect: "an integer from 8 to 16384",
    example: "30",
    schema: z.int().min(8).max(16384),
  }),
  userDataBudgetBytes: setting({
    kind: "integer",
    description: "Byte budget of the instances' user data (AWS hard limit: 16384).",
    default: 1024,
    expect: `an integer from 1 to ${USER_DATA_HARD_LIMIT_BYTES}`,
    example: "1024",
    schema: z.int().min(1).max(USER_DATA_HARD_LIMIT_BYTES),
  }),
  buildTimeoutSeconds: setting({
    kind: "integer",
    description: "Timeout of one stage's Packer build, in seconds (the runner interrupts Packer after it).",
    default: 7200,
    expect: "an integer from 60 to 86400",
    example: "7200",
    schema: z.int().min(60).max(86400),
  }),
  deregisterReplacedImages: setting({
    kind: "boolean",
    description: "Deregister a stage's old AMI (every region) and delete its snapshots when the stage is rebuilt or destroyed.",
    default: false,
    expect: "true or false",
    example: "true",
    schema: z.boolean(),
  }),
  tags: setting({
    kind: "array",
    description: 'Extra tags on the instances and their IAM role, profile and security group, as "Key=Value" strings.',
    default: [] as string[],
    expect: 'a list of "Key=Value" strings',
    example: '["CostCenter=jira"]',
    schema: z.array(z.string().regex(tagPair)),
  }),
  promoted: setting({
    kind: "object",
    description:
      "Promotion pin {fromStack, stage, amiId}: take stage and its ancestors from stack fromStack (dev or org/project/stack) at AMI amiId instead of building them; {} builds the whole chain.",
    default: {} as PromotedPin | Record<string, never>,
    expect: "{fromStack: <stack or org/project/stack>, stage: <stage>, amiId: <ami-…>} (amiId absent until the first promotion), or {}",
    example: "{fromStack: dev, stage: jira}",
    schema: PromotedSettingSchema,
    detail: (decoded) => {
      const parsed = PromotedPinSchema.safeParse(decoded);
      return parsed.success ? "" : ` (${zodIssues(parsed.error, "promoted")})`;
    },
  }),
} as const;

export type SettingKey = keyof typeof SETTINGS;
type SettingValue<K extends SettingKey> = (typeof SETTINGS)[K] extends Setting<infer T> ? T : never;

/** The typed configuration of one stack: the only thing the program reads config through. */
export type StackConfig = { readonly [K in Exclude<SettingKey, "tags" | "promoted">]: SettingValue<K> } & {
  readonly stack: string;
  readonly tags: Readonly<Record<string, string>>;
  /** The promotion pin; absent when the stack builds its whole chain. */
  readonly promoted?: PromotedPin;
};

export interface ConfigSource {
  stack: string;
  /** The file a user edits to fix a value, named in every error. */
  file: string;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = current;
    }
  }
  return row[b.length]!;
}

function closestKey(key: string): SettingKey | undefined {
  let best: SettingKey | undefined;
  let bestDistance = 4;
  for (const candidate of Object.keys(SETTINGS) as SettingKey[]) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Pulumi hands every config value to a program as a string; non-strings arrive as JSON. */
function decode(kind: Kind, raw: string): unknown {
  if (kind === "string") return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Turns a stack's raw config (`"jira-images:key" -> string`, as `pulumi.runtime.allConfig()` gives
 * it) into a StackConfig. Every problem is reported at once, one line each, naming the stack file,
 * the key and a command that fixes it. Keys of other namespaces (e.g. `aws:`) are ignored.
 */
export function parseStackConfig(raw: Readonly<Record<string, string>>, source: ConfigSource): StackConfig {
  const problems: string[] = [];
  // `pulumi config set` stores a string; typed values are best written into the stack file.
  const fix = (key: string, value: string) =>
    SETTINGS[key as SettingKey].kind === "string"
      ? `Fix: pulumi config set --stack ${source.stack} ${PROJECT}:${key} ${shellQuote(value)}`
      : `Fix: write "${PROJECT}:${key}: ${value}" under config: in ${source.file}`;
  const where = (key: string) => `${source.file}: ${PROJECT}:${key}`;

  for (const fullKey of Object.keys(raw).sort()) {
    if (!fullKey.startsWith(`${PROJECT}:`)) continue;
    const key = fullKey.slice(PROJECT.length + 1);
    if (!(key in SETTINGS)) {
      const guess = closestKey(key);
      problems.push(
        `${where(key)} is not a setting of this project` +
          (guess ? ` (did you mean ${PROJECT}:${guess}?)` : "") +
          `. Fix: pulumi config rm --stack ${source.stack} ${PROJECT}:${key}` +
          (guess ? ` and set ${PROJECT}:${guess}` : ""),
      );
    }
  }

  const values: Record<string, unknown> = {};
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    const spec: Setting<unknown> = SETTINGS[key];
    const rawValue = raw[`${PROJECT}:${key}`];
    if (rawValue === undefined) {
      if (spec.default === undefined) {
        problems.push(`${where(key)} is required (${spec.expect}). ${fix(key, spec.example)}`);
      } else {
        values[key] = spec.default;
      }
      continue;
    }
    const decoded = decode(spec.kind, rawValue);
    const parsed = spec.schema.safeParse(decoded);
    if (parsed.success) {
      values[key] = parsed.data;
    } else {
      const shown = spec.redact ? spec.redact(rawValue) : rawValue;
      const detail = spec.detail ? spec.detail(decoded) : "";
      problems.push(`${where(key)} must be ${spec.expect}, got ${JSON.stringify(shown)}${detail}. ${fix(key, spec.example)}`);
    }
  }

  const tags = new Map<string, string>();
  if (problems.length === 0) {
    const regions = values.amiRegions as string[];
    if (regions.includes(values.region as string)) {
      problems.push(
        `${where("amiRegions")} lists the build region ${values.region as string}; it holds only the extra copy regions. ` +
          fix("amiRegions", JSON.stringify(regions.filter((r) => r !== values.region))),
      );
    }
    const keyRegions = (values.regionKmsKeyIds as string[]).map((pair) => pair.slice(0, pair.indexOf("=")));
    const keyFix = fix("regionKmsKeyIds", JSON.stringify(regions.map((r) => `${r}=alias/jira-images`)));
    for (const region of keyRegions.filter((r, i) => keyRegions.indexOf(r) !== i || !regions.includes(r))) {
      problems.push(
        `${where("regionKmsKeyIds")} ${regions.includes(region) ? "repeats" : "names"} ${region}, ` +
          `${regions.includes(region) ? "give one key per copy region" : "which is not in amiRegions (the build region's key is kmsKeyId)"}. ${keyFix}`,
      );
    }
    if (values.kmsKeyId === "" && keyRegions.length > 0) {
      problems.push(
        `${where("kmsKeyId")} is required when regionKmsKeyIds is set, or the images in ${values.region as string} use aws/ebs. ` +
          fix("kmsKeyId", SETTINGS.kmsKeyId.example),
      );
    }
    const unkeyed = regions.filter((r) => !keyRegions.includes(r));
    if (values.kmsKeyId !== "" && unkeyed.length > 0) {
      problems.push(
        `${where("regionKmsKeyIds")} names no key for ${unkeyed.join(", ")}: those copies would use aws/ebs and could not be shared ` +
          `like the images in ${values.region as string}. ${keyFix}`,
      );
    }
    if (values.resolveSourceAmi === true && values.sourceAmi !== "") {
      problems.push(
        `${where("resolveSourceAmi")} is true, but sourceAmi pins the OS image (${values.sourceAmi as string}): nothing is left to resolve. ` +
          `Fix: pulumi config rm --stack ${source.stack} ${PROJECT}:sourceAmi, or set ${PROJECT}:resolveSourceAmi to false`,
      );
    }
    if ((values.subnetIds as string[]).length > 0 && values.vpcId === "") {
      problems.push(
        `${where("vpcId")} is required when subnetIds is set, so that the security group is created in the subnets' VPC. ` +
          fix("vpcId", SETTINGS.vpcId.example),
      );
    }
    problems.push(...environmentProblems(values as Omit<StackConfig, "stack" | "tags">, where, fix));
    const pin = promotedPin(values.promoted as PromotedPin | Record<string, never>);
    if (pin !== undefined && isSameStack(pin.fromStack, source.stack)) {
      problems.push(
        `${where("promoted")} takes ${pin.stage} from ${pin.fromStack}, which is this stack itself. ` +
          `Fix: name the stack that builds ${pin.stage} (e.g. fromStack: dev), or remove ${PROJECT}:promoted from ${source.file} to build the whole chain here`,
      );
    }
    for (const pair of values.tags as string[]) {
      const eq = pair.indexOf("=");
      const tagKey = pair.slice(0, eq);
      if (tags.has(tagKey) || RESERVED_TAGS.has(tagKey)) {
        problems.push(
          `${where("tags")} ${tags.has(tagKey) ? "repeats" : "overrides the program's own"} tag ${tagKey}. ` +
            `Fix: remove it from ${PROJECT}:tags in ${source.file}`,
        );
      }
      tags.set(tagKey, pair.slice(eq + 1));
    }
  }

  if (problems.length > 0) {
    throw new JiraImagesError("CONFIG_INVALID", `stack ${source.stack}:\n  ${problems.join("\n  ")}`);
  }
  const { promoted, ...rest } = values;
  const pin = promotedPin(promoted as PromotedPin | Record<string, never>);
  return {
    ...(rest as Omit<StackConfig, "stack" | "tags" | "promoted">),
    stack: source.stack,
    tags: Object.fromEntries(tags),
    ...(pin === undefined ? {} : { promoted: pin }),
  };
}

/**
 * Combinations that cannot work once instances are declared: instances without a path to SSM and
 * their secret, a load balancer without a listener, a base URL its listeners do not serve, ARNs in
 * another region.
 */
function environmentProblems(
  c: Omit<StackConfig, "stack" | "tags">,
  where: (key: string) => string,
  fix: (key: string, value: string) => string,
): string[] {
  const problems: string[] = [];
  for (const key of ["certificateArn", "secretsKmsKeyArn"] as const) {
    if (c[key] !== "" && arnRegion(c[key]) !== c.region) {
      problems.push(`${where(key)} is in region ${arnRegion(c[key])}, not the stack's region ${c.region}. ${fix(key, SETTINGS[key].example)}`);
    }
  }
  if (c.loadBalancerSubnetIds.length > 0 && c.vpcId === "") {
    problems.push(`${where("vpcId")} is required when loadBalancerSubnetIds is set. ${fix("vpcId", SETTINGS.vpcId.example)}`);
  }
  if (c.instanceCount === 0) return problems;
  if (c.vpcId === "" && c.vpcEndpoints === "never" && !c.associatePublicIp) {
    problems.push(
      `${where("vpcEndpoints")} is never, but the instances run in the default VPC without a public IP and it has no NAT: ` +
        "they could reach neither SSM Session Manager nor their database secret. " +
        `Fix: remove ${PROJECT}:vpcEndpoints (auto creates the endpoints), or set ${PROJECT}:vpcId and ${PROJECT}:subnetIds to subnets with a NAT route`,
    );
  }
  if (c.certificateArn === "" && !c.allowPlainHttp) {
    problems.push(
      `${where("certificateArn")} is required: the load balancer serves Jira over HTTPS only unless allowPlainHttp is true. ` +
        fix("certificateArn", SETTINGS.certificateArn.example),
    );
  }
  if (c.jiraBaseUrl !== "") {
    const scheme = new URL(c.jiraBaseUrl).protocol;
    if (scheme === "https:" && c.certificateArn === "") {
      problems.push(`${where("jiraBaseUrl")} is https, but without certificateArn the load balancer has no HTTPS listener. ${fix("certificateArn", SETTINGS.certificateArn.example)}`);
    }
    if (scheme === "http:" && !c.allowPlainHttp) {
      problems.push(
        `${where("jiraBaseUrl")} is plain http, but the load balancer redirects HTTP to HTTPS. ` +
          `Fix: use an https:// base URL, or write "${PROJECT}:allowPlainHttp: true" under config: in the stack file`,
      );
    }
  }
  return problems;
}

/** Tags the program sets itself (lineage and ownership); config must not override them. */
const RESERVED_TAGS: ReadonlySet<string> = new Set([
  "Name",
  "Project",
  "Stack",
  "Environment",
  "Stage",
  "StageLineage",
  "SourceAmi",
  "InputsHash",
  "ManagedBy",
]);

/**
 * Converts a stack file's `config:` map to what the Pulumi runtime hands a program: strings as
 * they are, everything else as JSON. Used to read a stack file without Pulumi (tests, the driver).
 */
export function stackFileToRawConfig(config: Readonly<Record<string, unknown>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => [key, typeof value === "string" ? value : JSON.stringify(value)]),
  );
}

/** Reads `Pulumi.<stack>.yaml` under `projectRoot` and returns its raw config map. */
export function readStackFileConfig(projectRoot: string, stack: string): Record<string, string> {
  const file = join(projectRoot, `Pulumi.${stack}.yaml`);
  if (!existsSync(file)) {
    throw new JiraImagesError(
      "CONFIG_INVALID",
      `stack ${stack}: Pulumi.${stack}.yaml does not exist in ${projectRoot}. Fix: pulumi stack init ${stack} and set its config`,
    );
  }
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, "utf8"));
  } catch (error) {
    throw new JiraImagesError("CONFIG_INVALID", `stack ${stack}: Pulumi.${stack}.yaml is not valid YAML: ${(error as Error).message}`, { cause: error });
  }
  const config = (doc as { config?: unknown } | null)?.config ?? {};
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new JiraImagesError("CONFIG_INVALID", `stack ${stack}: Pulumi.${stack}.yaml: "config" must be a map of key: value`);
  }
  return stackFileToRawConfig(config as Record<string, unknown>);
}

/** Parses a stack file without Pulumi (for tools such as the driver's rebuild plan). */
export function loadStackConfigFile(projectRoot: string, stack: string): StackConfig {
  return parseStackConfig(readStackFileConfig(projectRoot, stack), { stack, file: `Pulumi.${stack}.yaml` });
}
