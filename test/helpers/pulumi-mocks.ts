import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PROJECT, readStackFileConfig } from "../../src/config.ts";
import { INSTALLER_CHECKSUMS } from "../../src/installer-checksums.ts";
import * as debuggable from "@pulumi/pulumi/runtime/debuggable.js";
import type { StageResult } from "../../src/runner/result.ts";
import { stageCommandName } from "../../src/stages.ts";
import { jiraInstaller } from "../../stages/jira.ts";
import { copyPackerFolder } from "./packer-copy.ts";
import { tempDir } from "./temp-dir.ts";

// Internal to the SDK (absent from its types): clears the record of promises a failed program left pending.
const { leakedPromises } = debuggable as unknown as { leakedPromises(): unknown };

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** What the tests put where a `git lfs pull` puts the Jira installer (not a pointer, not empty). */
export const STAND_IN_INSTALLER = "stand-in Jira installer, not an LFS pointer\n";

/**
 * A checkout of what the program reads (packer/) in a fresh folder, with a stand-in installer of
 * `jiraVersion` and its pin in packer/files/SHA256SUMS unless `installer` is false: like a clone
 * after `git lfs pull` (or before it, with the pin committed).
 */
export function projectCopy(options: { installer?: boolean; jiraVersion?: string } = {}): string {
  const root = tempDir("program-");
  copyPackerFolder(PROJECT_ROOT, root);
  const installer = jiraInstaller(options.jiraVersion ?? "9.12.15");
  writeFileSync(join(root, INSTALLER_CHECKSUMS), `${createHash("sha256").update(STAND_IN_INSTALLER).digest("hex")}  ${basename(installer)}\n`);
  if (options.installer ?? true) writeFileSync(join(root, installer), STAND_IN_INSTALLER);
  return root;
}

export interface RecordedResource {
  type: string;
  name: string;
  // `any`: resource inputs are free-form JSON, read field by field in the assertions.
  inputs: Record<string, any>;
  /** URNs this resource depends on (dependsOn and inputs' dependencies), as the engine sees them. */
  dependencies: string[];
  urn: string;
}

export interface ProgramRun {
  resources: RecordedResource[];
  calls: string[];
  /** Every invoke's arguments, by token. */
  callArgs: Array<{ token: string; inputs: Record<string, unknown> }>;
  outputs: Record<string, { known: boolean; value: unknown }>;
  /** Error the program or one of its outputs failed with, if any. */
  error?: unknown;
}

/** A realistic AMI ID for a stage in a region (deterministic). */
export function fakeAmi(stage: string, region: string): string {
  return `ami-${createHash("sha256").update(`${stage}@${region}`).digest("hex").slice(0, 17)}`;
}

/**
 * The runner's stdout for a stage as the real runner prints it: one JSON line, every region's AMI,
 * `amiId`/`region` being the first region of Packer's (alphabetically sorted) artifact id, and the
 * image tests' result when the stage ran tests.
 */
export function runnerStdout(stage: string, regions: readonly string[], tests?: StageResult["tests"]): string {
  const sorted = [...regions].sort();
  const amis = Object.fromEntries(sorted.map((r) => [r, fakeAmi(stage, r)]));
  const result: StageResult = {
    stage,
    amiId: amis[sorted[0]!]!,
    region: sorted[0]!,
    amis,
    logFile: `.packer-logs/${stage}/packer-20250101T000000Z.log`,
    builderId: "mitchellh.amazonebs",
    packerVersion: "1.11.2",
    ...(tests !== undefined ? { tests } : {}),
  };
  return `${JSON.stringify(result)}\n`;
}

/** Values of `--var k=v` words in a create command (shell-quoted or not). */
export function commandVars(create: string): Record<string, string> {
  const vars: Record<string, string> = {};
  const re = /--var ('((?:[^']|'\\'')*)'|(\S+))/g;
  for (let m = re.exec(create); m; m = re.exec(create)) {
    const word = m[2] !== undefined ? m[2].replace(/'\\''/g, "'") : m[3]!;
    const eq = word.indexOf("=");
    vars[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return vars;
}

function stageOf(create: string): string {
  const m = /--stage (\S+)/.exec(create);
  if (!m) throw new Error(`no --stage in ${create}`);
  return m[1]!;
}

/** The account the mocked caller identity reports. */
export const MOCK_ACCOUNT = "123456789012";

/**
 * Availability zones of the subnets the mocked lookups know: the default VPC's two default subnets
 * and three configurable ones, two of which share a zone. Others are in zone a.
 */
export const SUBNET_ZONES: Readonly<Record<string, string>> = {
  "subnet-0aaaaaaaaaaaaaaaa": "eu-west-1a",
  "subnet-0bbbbbbbbbbbbbbbb": "eu-west-1b",
  "subnet-01111111111111111": "eu-west-1a",
  "subnet-02222222222222222": "eu-west-1b",
  "subnet-03333333333333333": "eu-west-1a",
};

export interface RunOptions {
  /** Zones of subnets for the getSubnet lookup, over SUBNET_ZONES. */
  subnetZones?: Record<string, string>;
  stack: string;
  preview?: boolean;
  /** Replaces or adds raw config values (`"jira-images:key" -> string`), after the stack file. */
  config?: Record<string, string>;
  /** Removes keys from the stack file's config. */
  without?: string[];
  /**
   * The Command's stdout; defaults to what the runner prints for the stage's regions. May run
   * the command for real in `cwd`, where the provider would: its `dir`, else the project root.
   */
  stdout?: (stage: string, create: string, cwd: string) => string | Promise<string>;
  /** Defaults to a checkout with the installer (projectCopy), shared by the runs of a process. */
  projectRoot?: string;
  /** The program's environment; defaults to BUILDER_ENV. */
  env?: NodeJS.ProcessEnv;
  /** What aws.ec2.getAmi finds (resolveSourceAmi); an Error makes the lookup fail. */
  sourceImage?: string | Error;
}

/** What a user exports before an `up` (README: Set-up): the builder's own address. */
export const BUILDER_ENV: NodeJS.ProcessEnv = { PKR_VAR_ssh_source_cidrs: '["192.0.2.10/32"]' };

let sharedCheckout: string | undefined;

// `any`: the SDK's mock monitor handles untyped gRPC request and response objects.
type Monitor = { registerResource(req: any, cb: (err: unknown, res: any) => void): Promise<void> };

async function settle(value: unknown): Promise<{ known: boolean; value: unknown }> {
  if (!pulumi.Output.isInstance(value)) return { known: true, value };
  // Output#isKnown and #promise are internal but stable: the public API cannot observe "unknown".
  const output = value as unknown as { isKnown: Promise<boolean>; promise(): Promise<unknown> };
  const [known, resolved] = await Promise.all([output.isKnown, output.promise()]);
  return { known, value: resolved };
}

/**
 * Runs the program for a stack under Pulumi's runtime mocks, with the stack's real
 * `Pulumi.<stack>.yaml` as config (Pulumi.yaml defaults are not applied under mocks; the
 * program's own defaults are), and returns every registered resource and the stack outputs.
 */
export async function runProgram(options: RunOptions): Promise<ProgramRun> {
  const projectRoot = options.projectRoot ?? (sharedCheckout ??= projectCopy());
  const raw = { ...readStackFileConfig(PROJECT_ROOT, options.stack), ...options.config };
  for (const key of options.without ?? []) delete raw[key];
  const regions = [raw[`${PROJECT}:region`]!, ...JSON.parse(raw[`${PROJECT}:amiRegions`] ?? "[]")] as string[];
  // As the runner reports a build whose image tests all passed (it fails any other).
  const testsOf = (create: string) => {
    const count = commandVars(create)["image_tests_count"];
    return count === undefined ? undefined : { passed: true, count: Number(count) };
  };
  const stdout = options.stdout ?? ((stage: string, create: string) => runnerStdout(stage, regions, testsOf(create)));

  const resources: RecordedResource[] = [];
  const calls: string[] = [];
  const callArgs: ProgramRun["callArgs"] = [];
  await pulumi.runtime.setMocks(
    {
      async newResource(args) {
        const id = `${args.name}-id`;
        if (args.type === "command:local:Command") {
          // In a preview the command does not run: its stdout stays unknown.
          if (options.preview) return { id: undefined as unknown as string, state: args.inputs };
          const out = await stdout(stageOf(args.inputs.create), args.inputs.create, args.inputs.dir ?? projectRoot);
          return { id, state: { ...args.inputs, stdout: out, stderr: "" } };
        }
        if (args.type === "aws:ec2/instance:Instance") {
          return { id, state: { ...args.inputs, privateIp: `10.0.1.${resources.length}`, arn: `arn:aws:ec2:::instance/${id}` } };
        }
        const region = raw[`${PROJECT}:region`];
        const arn = `arn:aws:mock:${region}:${MOCK_ACCOUNT}:${args.type}/${id}`;
        if (args.type === "aws:lb/loadBalancer:LoadBalancer") {
          return { id, state: { ...args.inputs, arn, dnsName: `${args.name}-1234567890.${region}.elb.amazonaws.com` } };
        }
        if (args.type === "aws:efs/fileSystem:FileSystem") {
          return { id: "fs-0123456789abcdef0", state: { ...args.inputs, arn, dnsName: `fs-0123456789abcdef0.efs.${region}.amazonaws.com` } };
        }
        return { id, state: { ...args.inputs, arn, name: args.inputs.name ?? args.name } };
      },
      call(args) {
        calls.push(args.token);
        callArgs.push({ token: args.token, inputs: args.inputs });
        if (args.token === "aws:ec2/getAmi:getAmi") {
          const found = options.sourceImage ?? "ami-0a1b2c3d4e5f60718";
          if (found instanceof Error) throw found;
          return { id: found, imageId: found, name: "al2023-ami-2023.6.20260101.0-kernel-6.1-x86_64" };
        }
        if (args.token === "aws:ec2/getVpc:getVpc") return { id: "vpc-0d0e0f0a0b0c0d0e0", cidrBlock: "172.31.0.0/16" };
        if (args.token === "aws:ec2/getSubnets:getSubnets") return { ids: ["subnet-0bbbbbbbbbbbbbbbb", "subnet-0aaaaaaaaaaaaaaaa"] };
        if (args.token === "aws:ec2/getSubnet:getSubnet") {
          const id = args.inputs.id as string;
          return { id, availabilityZone: options.subnetZones?.[id] ?? SUBNET_ZONES[id] ?? `${raw[`${PROJECT}:region`]}a` };
        }
        if (args.token === "aws:index/getCallerIdentity:getCallerIdentity") {
          return { accountId: MOCK_ACCOUNT, arn: `arn:aws:sts::${MOCK_ACCOUNT}:assumed-role/deploy/ci`, userId: "AROAEXAMPLE:ci", id: MOCK_ACCOUNT };
        }
        if (args.token === "aws:index/getPartition:getPartition") {
          return { partition: "aws", dnsSuffix: "amazonaws.com", reverseDnsPrefix: "com.amazonaws", id: "aws" };
        }
        throw new Error(`unexpected invoke ${args.token}`);
      },
    },
    PROJECT,
    options.stack,
    options.preview ?? false,
  );

  const monitor = pulumi.runtime.getMonitor() as unknown as Monitor;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) =>
    register(req, (err, res) => {
      if (!err) {
        resources.push({
          type: req.getType(),
          name: req.getName(),
          inputs: pulumi.runtime.deserializeProperties(req.getObject()),
          dependencies: req.getDependenciesList(),
          urn: res.getUrn(),
        });
      }
      cb(err, res);
    });

  pulumi.runtime.setAllConfig(raw);
  const { default: jiraImages } = await import("../../index.ts");
  const run: ProgramRun = { resources, calls, callArgs, outputs: {} };
  // A value that fails inside an apply and feeds a resource input surfaces as an unhandled
  // rejection (the CLI then fails the program) while the resource's outputs never settle.
  let failed: (reason: unknown) => void = () => {};
  const unhandled = new Promise<never>((_, reject) => (failed = reject));
  unhandled.catch(() => {});
  process.on("unhandledRejection", failed);
  try {
    const outputs = jiraImages({ projectRoot, env: options.env ?? BUILDER_ENV });
    for (const [key, value] of Object.entries(outputs)) run.outputs[key] = await Promise.race([settle(value), unhandled]);
  } catch (err) {
    run.error = err;
  } finally {
    process.off("unhandledRejection", failed);
  }
  if (run.error === undefined) {
    await pulumi.runtime.disconnect();
  } else {
    // A failed program leaves the registrations that waited on the failed value pending forever
    // (the real CLI would exit): forget them instead of waiting, so that the next run starts
    // clean (setMocks resets the RPC queue) and the exit-time leak report stays quiet.
    leakedPromises();
  }
  return run;
}

export function byType(run: ProgramRun, type: string): RecordedResource[] {
  return run.resources.filter((r) => r.type === type);
}

export function commandOf(run: ProgramRun, stage: string): RecordedResource {
  const found = byType(run, "command:local:Command").find((r) => r.name === stageCommandName(stage));
  if (!found) throw new Error(`no command for stage ${stage}; commands: ${byType(run, "command:local:Command").map((r) => r.name)}`);
  return found;
}
