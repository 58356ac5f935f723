/**
 * `sweep`: the pure rules (which leftovers go, which stay and why), the state references, and the
 * command against a stubbed EC2 (aws-sdk-client-mock): paging, dry run, dependency order, a
 * partial failure with its exit code, and a rerun that finishes.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  DescribeVolumesCommand,
  EC2Client,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { CLEANUP_GRACE_SECONDS, amisInState, decide, runState, type SweepContext, type SweepResource } from "../src/lifecycle/sweep.ts";
import { recordedStageAmis, runSweep, SWEEP_EXIT } from "../src/driver/sweep-command.ts";
import { SWEEP_ACTIONS } from "../src/lifecycle/sweep-ec2.ts";
import { parseDriverArgs } from "../src/driver/args.ts";
import { markerPath } from "../src/runner/run-marker.ts";
import { tempDir } from "./helpers/temp-dir.ts";

const ROOT = resolve(import.meta.dirname, "..");
const NOW = new Date("2026-12-04T20:00:00Z");
const OLD_RUN = "20261204T100000Z-0000000a"; // 10 h before NOW: over for a 2 h timeout
const YOUNG_RUN = "20261204T190000Z-0000000b"; // 1 h before NOW
const LIVE_RUN = "20261204T090000Z-0000000c";

function tags(runId: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return {
    "jira-images:stack": "dev",
    "jira-images:stage": "jira",
    "jira-images:managed-by": "packer",
    ...(runId !== undefined ? { "jira-images:run-id": runId } : {}),
    ...extra,
  };
}

function context(over: Partial<SweepContext> = {}): SweepContext {
  return {
    now: NOW,
    timeoutSeconds: 7200,
    liveRunIds: new Set([LIVE_RUN]),
    referencedAmis: new Set(),
    recordedImageCreated: new Map(),
    keepsReplacedImages: false,
    ...over,
  };
}

describe("sweep rules (pure)", () => {
  it("a run is over only after the build timeout plus the cleanup allowance, and without a live runner", () => {
    assert.equal(runState(OLD_RUN, context()).dead, true);
    assert.equal(runState(YOUNG_RUN, context()).dead, false);
    assert.match(runState(YOUNG_RUN, context()).why, /may still be running/);
    assert.equal(runState(LIVE_RUN, context()).dead, false);
    assert.match(runState(LIVE_RUN, context()).why, /is live/);
    assert.equal(runState(undefined, context()).dead, false);
    assert.equal(runState("manual", context()).dead, false, "a hand build's run id is never swept");
    // Exactly at the edge: started timeout + grace ago.
    const edge = new Date(NOW.getTime() - (7200 + CLEANUP_GRACE_SECONDS) * 1000 + 1000);
    const id = `${edge.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}-0000000d`;
    assert.equal(runState(id, context()).dead, false);
    assert.equal(runState(id, context({ now: new Date(NOW.getTime() + 1000) })).dead, true);
  });

  it("removes a dead run's temporary resources, keeps a live or young run's and untagged ones", () => {
    const resources: SweepResource[] = [
      { kind: "instance", region: "eu-west-1", id: "i-dead", tags: tags(OLD_RUN), state: "running" },
      { kind: "volume", region: "eu-west-1", id: "vol-dead", tags: tags(OLD_RUN) },
      { kind: "security-group", region: "eu-west-1", id: "sg-young", tags: tags(YOUNG_RUN) },
      { kind: "key-pair", region: "eu-west-1", id: "packer_live", tags: tags(LIVE_RUN) },
      { kind: "volume", region: "eu-west-1", id: "vol-untagged", tags: tags(undefined) },
      { kind: "security-group", region: "cn-north-1", id: "sg-via", tags: {}, viaInstance: "i-dead", ownerRunId: OLD_RUN },
      { kind: "key-pair", region: "cn-north-1", id: "packer_via-young", tags: {}, viaInstance: "i-young", ownerRunId: YOUNG_RUN },
    ];
    const removed = decide(resources, context()).filter((d) => d.remove).map((d) => d.resource.id);
    assert.deepEqual(removed, ["i-dead", "vol-dead", "sg-via"]);
  });

  it("images: never a pinned, referenced, deprecated or live one; with kept replaced images only those newer than the state's", () => {
    const image = (id: string, runId: string | undefined, extra: Record<string, string> = {}, more: Partial<SweepResource> = {}): SweepResource => ({
      kind: "image",
      region: "eu-west-1",
      id,
      tags: tags(runId, extra),
      created: "2026-12-04T10:30:00.000Z",
      snapshots: [`snap-${id}`],
      ...more,
    });
    const images = [
      image("ami-00000000000000001", OLD_RUN),
      image("ami-00000000000000002", OLD_RUN, { "jira-images:pinned-by:prod": "organization/jira-images/prod" }),
      image("ami-00000000000000003", OLD_RUN),
      image("ami-00000000000000004", OLD_RUN, {}, { deprecationTime: "2026-12-10T00:00:00.000Z" }),
      image("ami-00000000000000005", YOUNG_RUN),
      image("ami-00000000000000006", undefined),
    ];
    const ctx = context({ referencedAmis: new Set(["ami-00000000000000003"]) });
    const decisions = decide(images, ctx);
    assert.deepEqual(decisions.filter((d) => d.remove).map((d) => d.resource.id), ["ami-00000000000000001"]);
    assert.match(decisions[1]!.reason, /pinned by stack organization\/jira-images\/prod \(tag jira-images:pinned-by:prod\)/);
    assert.match(decisions[3]!.reason, /deprecated/);
    assert.match(decisions[5]!.reason, /no jira-images:run-id tag/);

    // prod keeps replaced images: an unreferenced image older than the stage's recorded one may be one of them.
    const keeps = (recorded: string) => decide([images[0]!], context({ keepsReplacedImages: true, recordedImageCreated: new Map([["jira", recorded]]) }))[0]!;
    assert.equal(keeps("2026-12-04T12:00:00.000Z").remove, false);
    assert.match(keeps("2026-12-04T12:00:00.000Z").reason, /possibly a replaced image this stack keeps/);
    assert.equal(keeps("2026-12-04T09:00:00.000Z").remove, true, "newer than the recorded image: a failed build's");
    assert.equal(decide([images[0]!], context({ keepsReplacedImages: true }))[0]!.remove, true, "no recorded image of the stage at all");
  });

  it("finds every AMI in a state export, and each stage command's recorded AMIs", () => {
    const stdout = JSON.stringify({ stage: "jira", amiId: "ami-0aaaaaaaaaaaaaaa1", region: "eu-west-1", amis: { "eu-west-1": "ami-0aaaaaaaaaaaaaaa1", "eu-central-1": "ami-0bbbbbbbbbbbbbbb2" }, logFile: "x.log" });
    const deployment = {
      version: 3,
      deployment: {
        resources: [
          { urn: "urn:pulumi:dev::jira-images::pulumi:pulumi:Stack::jira-images-dev", type: "pulumi:pulumi:Stack", outputs: { amiIds: { base: "ami-0ccccccccccccccc3" } } },
          { urn: "urn:pulumi:dev::jira-images::jira-images:pipeline:ImagePipeline$jira-images:pipeline:ImageStage$command:local:Command::jira-build", type: "command:local:Command", outputs: { stdout } },
          { urn: "urn:pulumi:dev::jira-images::command:local:Command::other", type: "command:local:Command", outputs: { stdout: "not json" } },
        ],
      },
    };
    assert.deepEqual([...amisInState(deployment)].sort(), ["ami-0aaaaaaaaaaaaaaa1", "ami-0bbbbbbbbbbbbbbb2", "ami-0ccccccccccccccc3"]);
    assert.deepEqual([...recordedStageAmis(deployment).entries()].map(([s, a]) => [s, [...a].sort()]), [["jira", ["ami-0aaaaaaaaaaaaaaa1", "ami-0bbbbbbbbbbbbbbb2"]]]);
  });

  it("the driver takes sweep --stack <s> [--apply]; --apply belongs to prune and sweep alone", () => {
    assert.deepEqual(parseDriverArgs(["sweep", "--stack", "dev"]), { command: "sweep", stack: "dev", format: "text", verbose: false, yes: false, apply: false });
    assert.deepEqual(parseDriverArgs(["sweep", "--apply", "--stack=dev"]), { command: "sweep", stack: "dev", format: "text", verbose: false, yes: false, apply: true });
    assert.throws(() => parseDriverArgs(["up", "--stack", "dev", "--apply"]), /pipeline-usage: --apply applies to prune, sweep only/);
  });
});

describe("sweep command against a stubbed EC2 (aws-sdk-client-mock)", () => {
  const ec2 = mockClient(EC2Client);
  let root: string;
  let lines: string[];
  const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "x" };

  beforeEach(() => {
    ec2.reset();
    root = tempDir("sweep-");
    for (const f of ["Pulumi.yaml", "Pulumi.dev.yaml"]) copyFileSync(join(ROOT, f), join(root, f));
    lines = [];
  });
  after(() => ec2.restore());

  const deps = (state: unknown = { version: 3, deployment: { resources: [] } }) => ({
    root,
    env: {},
    io: { stdout: () => undefined, stderr: (t: string) => void lines.push(...t.split("\n").filter(Boolean)), stderrIsTTY: false },
    now: () => NOW.getTime(),
    readState: async () => state,
    ec2Config: { credentials },
    terminateWaitSeconds: 5,
  });

  function stubLeftovers(): void {
    // Two pages of instances: the sweep must follow NextToken.
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce({
        Reservations: [{ Instances: [{ InstanceId: "i-1", State: { Name: "running" }, Tags: [{ Key: "jira-images:run-id", Value: OLD_RUN }], KeyName: "packer_5efef9ee-8e20-3ea4" }] }],
        NextToken: "page-2",
      })
      .resolves({ Reservations: [{ Instances: [{ InstanceId: "i-2", State: { Name: "stopped" }, Tags: [{ Key: "jira-images:run-id", Value: OLD_RUN }] }] }] });
    ec2.on(DescribeInstancesCommand, { NextToken: "page-2" }).resolves({
      Reservations: [{ Instances: [{ InstanceId: "i-2", State: { Name: "stopped" }, Tags: [{ Key: "jira-images:run-id", Value: OLD_RUN }] }] }],
    });
    // What the termination waiter asks.
    ec2.on(DescribeInstancesCommand, { InstanceIds: ["i-1", "i-2"] }).resolves({
      Reservations: [{ Instances: [{ InstanceId: "i-1", State: { Name: "terminated" } }, { InstanceId: "i-2", State: { Name: "terminated" } }] }],
    });
    ec2.on(DescribeVolumesCommand).resolves({ Volumes: [{ VolumeId: "vol-1", State: "available", Tags: [{ Key: "jira-images:run-id", Value: OLD_RUN }] }] });
    ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [{ GroupId: "sg-1", GroupName: "packer_1", Tags: [{ Key: "jira-images:run-id", Value: OLD_RUN }] }] });
    ec2.on(DescribeKeyPairsCommand).resolves({ KeyPairs: [{ KeyName: "packer_young", Tags: [{ Key: "jira-images:run-id", Value: YOUNG_RUN }] }] });
    // The untagged key pair of i-1 still exists (sweep checks before listing it).
    ec2.on(DescribeKeyPairsCommand, { Filters: [{ Name: "key-name", Values: ["packer_5efef9ee-8e20-3ea4"] }] }).resolves({ KeyPairs: [{ KeyName: "packer_5efef9ee-8e20-3ea4" }] });
    ec2.on(DescribeImagesCommand).resolves({
      Images: [
        { ImageId: "ami-0000000000000000a", State: "available", CreationDate: "2026-12-04T10:30:00.000Z", BlockDeviceMappings: [{ Ebs: { SnapshotId: "snap-a" } }], Tags: Object.entries(tags(OLD_RUN)).map(([Key, Value]) => ({ Key, Value })) },
        { ImageId: "ami-0000000000000000b", State: "available", CreationDate: "2026-12-04T10:30:00.000Z", Tags: Object.entries(tags(OLD_RUN)).map(([Key, Value]) => ({ Key, Value })) },
      ],
    });
  }

  it("dry run: lists what it would remove and why, removes nothing", async () => {
    stubLeftovers();
    const state = { deployment: { resources: [{ type: "pulumi:pulumi:Stack", outputs: { amiIds: { jira: "ami-0000000000000000b" } } }] } };
    const code = await runSweep({ stack: "dev", apply: false }, deps(state));
    assert.equal(code, SWEEP_EXIT.ok, lines.join("\n"));
    const text = lines.join("\n");
    for (const id of ["i-1", "i-2", "vol-1", "sg-1", "packer_5efef9ee-8e20-3ea4", "ami-0000000000000000a and its snapshots snap-a"]) {
      assert.match(text, new RegExp(`would \\w+ (instance|volume|security group|key pair|image) ${id}`), `${id} not listed`);
    }
    assert.match(text, /keep key-pair packer_young \(eu-west-1\): run 20261204T190000Z-0000000b may still be running/);
    assert.doesNotMatch(text, /ami-0000000000000000b/, "a referenced image is neither removed nor listed");
    assert.equal(ec2.commandCalls(TerminateInstancesCommand).length + ec2.commandCalls(DeregisterImageCommand).length + ec2.commandCalls(DeleteVolumeCommand).length, 0);
  });

  it("--apply removes in dependency order; a partial failure exits 4 naming it, and a rerun finishes", async () => {
    stubLeftovers();
    ec2.on(TerminateInstancesCommand).resolves({});
    ec2.on(DeleteVolumeCommand).resolves({});
    ec2.on(DeleteKeyPairCommand).resolves({});
    ec2.on(DeregisterImageCommand).resolves({});
    ec2.on(DeleteSnapshotCommand).resolves({});
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "RequestLimitExceeded" });
    ec2.on(DeleteSecurityGroupCommand).rejects(throttled);
    const code = await runSweep({ stack: "dev", apply: true }, deps());
    assert.equal(code, SWEEP_EXIT.incomplete, lines.join("\n"));
    assert.match(lines.join("\n"), /FAILED: delete security group sg-1 .*RequestLimitExceeded: Rate exceeded/);
    assert.match(lines.join("\n"), /sweep-incomplete: 1 of \d+ removals failed/);
    const order = ec2.calls().map((c) => c.args[0].constructor.name).filter((n) => !n.startsWith("Describe"));
    assert.deepEqual([...new Set(order)], ["TerminateInstancesCommand", "DeleteVolumeCommand", "DeleteSecurityGroupCommand", "DeleteKeyPairCommand", "DeregisterImageCommand", "DeleteSnapshotCommand"]);
    assert.deepEqual(ec2.commandCalls(DeleteSnapshotCommand).map((c) => c.args[0].input.SnapshotId), ["snap-a"]);
    // Every EC2 action it called is in the list the README and the deploy policies grant.
    const called = new Set(ec2.calls().map((c) => `ec2:${c.args[0].constructor.name.replace(/Command$/, "")}`));
    assert.deepEqual([...called].filter((a) => !(SWEEP_ACTIONS as readonly string[]).includes(a)), []);

    // The rerun: what is gone is gone (EC2 lists only the group now), and the group goes.
    ec2.reset();
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    ec2.on(DescribeVolumesCommand).resolves({ Volumes: [] });
    ec2.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [{ GroupId: "sg-1", GroupName: "packer_1", Tags: [{ Key: "jira-images:run-id", Value: OLD_RUN }] }] });
    ec2.on(DescribeKeyPairsCommand).resolves({ KeyPairs: [] });
    ec2.on(DescribeImagesCommand).resolves({ Images: [] });
    ec2.on(DeleteSecurityGroupCommand).resolves({});
    lines = [];
    assert.equal(await runSweep({ stack: "dev", apply: true }, deps()), SWEEP_EXIT.ok, lines.join("\n"));
    assert.match(lines.join("\n"), /done: delete security group sg-1/);
  });

  it("a build running on this machine is never swept, however old its run id", async () => {
    mkdirSync(join(root, ".packer-logs", "jira"), { recursive: true });
    writeFileSync(markerPath(join(root, ".packer-logs", "jira"), OLD_RUN), JSON.stringify({ runId: OLD_RUN, stage: "jira", startedAt: "x", runner: { pid: process.pid } }));
    stubLeftovers();
    assert.equal(await runSweep({ stack: "dev", apply: false }, deps()), SWEEP_EXIT.ok);
    assert.doesNotMatch(lines.join("\n"), /would /);
    assert.match(lines.join("\n"), /keep instance i-1 \(eu-west-1\): run 20261204T100000Z-0000000a is live/);
  });

  it("stops before removing anything when the state or a region's listing cannot be read", async () => {
    stubLeftovers();
    assert.equal(await runSweep({ stack: "dev", apply: true }, { ...deps(), readState: async () => Promise.reject(new Error("backend unreachable")) }), SWEEP_EXIT.failed);
    assert.match(lines.join("\n"), /sweep-failed: reading the state of stack "dev" failed, nothing was removed: Error: backend unreachable/);
    ec2.on(DescribeVolumesCommand).rejects(Object.assign(new Error("not allowed"), { name: "UnauthorizedOperation" }));
    lines = [];
    assert.equal(await runSweep({ stack: "dev", apply: true }, deps()), SWEEP_EXIT.failed);
    assert.match(lines.join("\n"), /sweep-failed: listing the build resources of stack "dev" in eu-west-1 failed, nothing was removed: UnauthorizedOperation: not allowed/);
    assert.equal(ec2.commandCalls(TerminateInstancesCommand).length, 0);
  });
});
