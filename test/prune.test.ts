/**
 * `prune`: the retention rules as pure functions, the report and the removals with the SDK mocked
 * (aws-sdk-client-mock): dry run changes nothing, a partial failure is reported and the rest
 * proceeds, a rerun finishes the job; and the command line.
 */
import { strict as assert } from "node:assert";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Image,
} from "@aws-sdk/client-ec2";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import { parseDriverArgs } from "../src/driver/args.ts";
import { stackFileReferences } from "../src/driver/prune.ts";
import { projectImage, type ProjectImage } from "../src/lifecycle/ec2.ts";
import { prune } from "../src/lifecycle/prune.ts";
import { decideRetention, referencesInDeployment, snapshotGiB, type Decision } from "../src/lifecycle/retention.ts";
import { tempDir } from "./helpers/temp-dir.ts";
import { PROJECT_ROOT } from "./helpers/pulumi-mocks.ts";

const NOW = new Date("2026-06-01T00:00:00Z");
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86_400_000).toISOString();

let serial = 0;
function ec2Image(stage: string, ageDays: number, extra: Partial<Image> & { tags?: Record<string, string> } = {}): Image {
  serial++;
  const id = `ami-${serial.toString(16).padStart(17, "0")}`;
  const { tags, ...rest } = extra;
  return {
    ImageId: id,
    Name: `jira-images-${stage}-${serial}`,
    OwnerId: "123456789012",
    CreationDate: daysAgo(ageDays),
    State: "available",
    Tags: Object.entries({
      "jira-images:stage": stage,
      "jira-images:stack": "dev",
      "jira-images:managed-by": "packer",
      "jira-images:build-time": daysAgo(ageDays),
      ...tags,
    }).map(([Key, Value]) => ({ Key, Value })),
    BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: `snap-${serial.toString(16).padStart(17, "0")}`, VolumeSize: 30 } }],
    ...rest,
  };
}

const image = (region: string, stage: string, ageDays: number, extra: Parameters<typeof ec2Image>[2] = {}): ProjectImage =>
  projectImage(region, ec2Image(stage, ageDays, extra));

function verdicts(decisions: Decision[]): Record<string, string> {
  return Object.fromEntries(decisions.map((d) => [d.image.imageId, d.action === "remove" ? "remove" : `keep: ${d.reasons.join("; ")}`]));
}

describe("prune: the retention rules (pure)", () => {
  const rules = { keep: 2, olderThanDays: 30, now: NOW };

  it("keeps the newest N of each stage in each region and anything younger than D, removes the rest", () => {
    const jira = [image("eu-west-1", "jira", 100), image("eu-west-1", "jira", 90), image("eu-west-1", "jira", 80), image("eu-west-1", "jira", 10)];
    const base = [image("eu-west-1", "base", 200)];
    const copy = [image("eu-central-1", "jira", 95), image("eu-central-1", "jira", 85), image("eu-central-1", "jira", 75)];
    const v = verdicts(decideRetention([...jira, ...base, ...copy], rules, new Map()));
    assert.equal(v[jira[0]!.imageId], "remove");
    assert.equal(v[jira[1]!.imageId], "remove");
    assert.match(v[jira[2]!.imageId]!, /^keep: newest 2 of 2 kept of stage jira in eu-west-1$/);
    assert.match(v[jira[3]!.imageId]!, /newest 1 of 2 .*; built 2026-05-22, younger than 30 days/);
    assert.match(v[base[0]!.imageId]!, /newest 1 of 2 kept of stage base/, "the only base image is the newest of its stage");
    assert.equal(v[copy[0]!.imageId], "remove", "each region ranks its own images");
    assert.match(v[copy[1]!.imageId]!, /^keep: newest 2 of 2/);
  });

  it("never removes a pinned image, one any stack or instance uses, one still being created or not yet deprecated", () => {
    const old = () => image("eu-west-1", "jira", 400);
    const pinned = image("eu-west-1", "jira", 400, { tags: { "jira-images:pinned-by:prod": "organization/jira-images/prod" } });
    const used = old();
    const pending = image("eu-west-1", "jira", 400, { State: "pending" });
    const scheduled = image("eu-west-1", "jira", 400, { DeprecationTime: "2026-06-08T00:00:00.000Z" });
    const deprecated = image("eu-west-1", "jira", 400, { DeprecationTime: "2026-05-01T00:00:00.000Z" });
    const fresh = [image("eu-west-1", "jira", 1), image("eu-west-1", "jira", 2)];
    const refs = new Map([[used.imageId, ["stack prod's state (stack outputs)", "instance i-0abc (stopped)"]]]);
    const v = verdicts(decideRetention([pinned, used, pending, scheduled, deprecated, ...fresh], rules, refs));
    assert.equal(v[pinned.imageId], "keep: pinned by stack organization/jira-images/prod (tag jira-images:pinned-by:prod)");
    assert.equal(v[used.imageId], "keep: used by stack prod's state (stack outputs); used by instance i-0abc (stopped)");
    assert.equal(v[pending.imageId], "keep: still being created");
    assert.match(v[scheduled.imageId]!, /^keep: deprecation scheduled for 2026-06-08/);
    assert.equal(v[deprecated.imageId], "remove", "a deprecation time that has passed is no reason to keep it");
  });

  it("finds AMI IDs anywhere in an exported stack: outputs, resources, old commands awaiting their delete", () => {
    const deployment = {
      version: 3,
      deployment: {
        resources: [
          { urn: "urn:pulumi:prod::jira-images::pulumi:pulumi:Stack::jira-images-prod", type: "pulumi:pulumi:Stack", outputs: { images: { jira: { amis: { "eu-west-1": "ami-0aaaaaaaaaaaaaaa1" } } } } },
          { urn: "urn:pulumi:prod::jira-images::aws:ec2/instance:Instance::jira-0", type: "aws:ec2/instance:Instance", inputs: { ami: "ami-0bbbbbbbbbbbbbbb2" } },
          { urn: "urn:pulumi:prod::jira-images::command:local:Command::jira-build", type: "command:local:Command", delete: true, outputs: { stdout: '{"amiId":"ami-0ccccccccccccccc3"}' } },
        ],
      },
    };
    assert.deepEqual(referencesInDeployment("prod", deployment), [
      ["ami-0aaaaaaaaaaaaaaa1", "stack prod's state (stack outputs)"],
      ["ami-0bbbbbbbbbbbbbbb2", "stack prod's state (aws:ec2/instance:Instance jira-0)"],
      ["ami-0ccccccccccccccc3", "stack prod's state (command:local:Command jira-build)"],
    ]);
  });

  it("finds a promotion pin's AMI in the stack files", () => {
    const root = tempDir("prune-files-");
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, "Pulumi.prod.yaml"), "config:\n  jira-images:promoted:\n    fromStack: dev\n    stage: jira\n    amiId: ami-0ddddddddddddddd4\n");
    writeFileSync(join(root, "Pulumi.yaml"), "name: x\n");
    assert.deepEqual(stackFileReferences(root), [["ami-0ddddddddddddddd4", "Pulumi.prod.yaml (jira-images:promoted)"]]);
  });

  it("counts snapshot storage by full size where EC2 reports it, else by volume size", () => {
    assert.equal(snapshotGiB([{ fullSizeBytes: 3 * 1024 ** 3, volumeSizeGiB: 30 }, { fullSizeBytes: undefined, volumeSizeGiB: 8 }]), 11);
  });
});

describe("prune: listing and removing through the SDK (aws-sdk-client-mock)", () => {
  let ec2: AwsClientStub<EC2Client>;
  before(() => (ec2 = mockClient(EC2Client)));
  afterEach(() => ec2.reset());
  after(() => ec2.restore());

  const REGION = "eu-west-1";
  const request = (apply: boolean) => ({ stack: "dev", regions: [REGION], keep: 1, olderThanDays: 30, apply, now: NOW });

  /** An account holding `images` (removed ones disappear) and snapshots tagged like Packer tags them. */
  function account(images: Image[], failDeregister = new Set<string>()) {
    const live = new Map(images.map((i) => [i.ImageId!, i]));
    const snapshots = new Map(images.map((i) => [i.BlockDeviceMappings![0]!.Ebs!.SnapshotId!, i.ImageId!]));
    ec2.on(DescribeImagesCommand).callsFake((input: { Filters?: Array<{ Name: string; Values: string[] }>; NextToken?: string }) => {
      const byId = input.Filters?.find((f) => f.Name === "image-id");
      const all = [...live.values()].filter((i) => !byId || byId.Values.includes(i.ImageId!));
      // Two pages, so that the listing follows NextToken.
      return input.NextToken ? { Images: all.slice(1) } : { Images: all.slice(0, 1), ...(all.length > 1 ? { NextToken: "p2" } : {}) };
    });
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    ec2.on(DescribeLaunchTemplatesCommand).resolves({ LaunchTemplates: [{ LaunchTemplateId: "lt-0123", LaunchTemplateName: "other-app" }] });
    ec2.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [{ VersionNumber: 1, LaunchTemplateData: { ImageId: "ami-0fffffffffffffff0" } }] });
    ec2.on(DescribeSnapshotsCommand).callsFake((input: { Filters?: Array<{ Name: string; Values: string[] }> }) => {
      const byId = input.Filters?.find((f) => f.Name === "snapshot-id");
      return {
        Snapshots: [...snapshots.entries()]
          .filter(([id]) => !byId || byId.Values.includes(id))
          .map(([SnapshotId, ami]) => ({ SnapshotId, VolumeSize: 30, FullSnapshotSizeInBytes: 2 * 1024 ** 3, Description: `Created by CreateImage(i-0123) for ${ami}` })),
      };
    });
    ec2.on(DeregisterImageCommand).callsFake((input: { ImageId: string }) => {
      if (failDeregister.has(input.ImageId)) throw Object.assign(new Error("You are not authorized"), { name: "UnauthorizedOperation" });
      if (!live.delete(input.ImageId)) throw Object.assign(new Error("gone"), { name: "InvalidAMIID.NotFound" });
      return {};
    });
    ec2.on(DeleteSnapshotCommand).callsFake((input: { SnapshotId: string }) => {
      if (live.has(snapshots.get(input.SnapshotId) ?? "")) throw Object.assign(new Error("in use"), { name: "InvalidSnapshot.InUse" });
      snapshots.delete(input.SnapshotId);
      return {};
    });
    return { live, snapshots };
  }

  const deps = (lines: string[], refs: Array<[string, string]> = []) => ({
    client: (region: string) => new EC2Client({ region }),
    references: async () => new Map(refs.map(([id, why]) => [id, [why]])),
    out: (line: string) => lines.push(line),
  });

  it("a dry run lists what would go and why the rest stays, with the storage freed, and changes nothing", async () => {
    const images = [ec2Image("jira", 300), ec2Image("jira", 200), ec2Image("jira", 100), ec2Image("jira", 5)];
    const state = account(images);
    const lines: string[] = [];
    const outcome = await prune(request(false), deps(lines, [[images[1]!.ImageId!, "stack prod's state (stack outputs)"]]));
    assert.deepEqual(outcome, { failures: [], removedImages: 0, removedSnapshots: 0 });
    const text = lines.join("\n");
    assert.match(text, new RegExp(`remove ${images[0]!.ImageId} eu-west-1 jira .*1 snapshot\\(s\\), 2\\.0 GiB`));
    assert.match(text, new RegExp(`keep   ${images[1]!.ImageId} .*used by stack prod's state`));
    assert.match(text, new RegExp(`remove ${images[2]!.ImageId}`));
    assert.match(text, new RegExp(`keep   ${images[3]!.ImageId} .*newest 1 of 1`));
    assert.match(text, /dry run, nothing changed: would remove 2 image\(s\) and 2 snapshot\(s\), up to 4\.0 GiB/);
    assert.equal(ec2.commandCalls(DeregisterImageCommand).length + ec2.commandCalls(DeleteSnapshotCommand).length, 0);
    assert.equal(state.live.size, 4);
  });

  it("--apply: one image that fails does not stop the others; a rerun finishes the job", async () => {
    const images = [ec2Image("jira", 300), ec2Image("jira", 200), ec2Image("jira", 100), ec2Image("jira", 5)];
    const failing = new Set([images[1]!.ImageId!]);
    const state = account(images, failing);
    const lines: string[] = [];
    const first = await prune(request(true), deps(lines));
    assert.equal(first.failures.length, 1);
    assert.match(first.failures[0]!, new RegExp(`${images[1]!.ImageId} in eu-west-1: deregistering failed: UnauthorizedOperation`));
    assert.equal(first.removedImages, 2);
    assert.ok(!state.live.has(images[0]!.ImageId!) && !state.live.has(images[2]!.ImageId!) && state.live.has(images[1]!.ImageId!));
    assert.ok(state.live.has(images[3]!.ImageId!), "the newest stays");
    assert.equal(state.snapshots.size, 2, "the removed images' snapshots are gone");

    // docs/iam/prune-policy.json grants exactly the EC2 actions prune sends, removals only on the project's tag.
    const policy = JSON.parse(readFileSync(join(PROJECT_ROOT, "docs/iam/prune-policy.json"), "utf8")) as {
      Statement: Array<{ Action: string[]; Condition?: Record<string, Record<string, string>> }>;
    };
    const granted = policy.Statement.flatMap((s) => s.Action).filter((a) => a.startsWith("ec2:")).sort();
    const sent = [...new Set(ec2.calls().map((c) => `ec2:${(c.args[0] as object).constructor.name.replace(/Command$/, "")}`))].sort();
    assert.deepEqual(granted, sent);
    const removing = policy.Statement.find((s) => s.Action.includes("ec2:DeregisterImage"))!;
    assert.deepEqual(removing.Condition, { StringEquals: { "aws:ResourceTag/jira-images:managed-by": "packer" } });

    failing.clear();
    const again = await prune(request(true), deps([]));
    assert.deepEqual(again.failures, []);
    assert.equal(again.removedImages, 1);
    assert.deepEqual([...state.live.keys()], [images[3]!.ImageId]);
    assert.equal(state.snapshots.size, 1);
  });

  it("a rerun deletes the snapshots a run left when it stopped after deregistering", async () => {
    const images = [ec2Image("jira", 300), ec2Image("jira", 5)];
    const state = account(images);
    state.live.delete(images[0]!.ImageId!); // deregistered by an earlier run that failed before the snapshot went
    const lines: string[] = [];
    const outcome = await prune(request(true), deps(lines));
    assert.deepEqual(outcome.failures, []);
    assert.equal(outcome.removedSnapshots, 1);
    assert.match(lines.join("\n"), new RegExp(`remove snapshot snap-\\w+ eu-west-1: its image ${images[0]!.ImageId} is gone`));
    assert.equal(state.snapshots.size, 1);
  });

  it("removes nothing when what the stacks reference cannot be read", async () => {
    account([ec2Image("jira", 300), ec2Image("jira", 200)]);
    await assert.rejects(
      prune(request(true), { ...deps([]), references: async () => Promise.reject(new Error("spawn pulumi ENOENT")) }),
      /ENOENT/,
    );
    assert.equal(ec2.commandCalls(DeregisterImageCommand).length, 0);
  });
});

describe("prune: the command line", () => {
  it("defaults to a dry run keeping 3 per stage and anything younger than 30 days", () => {
    const args = parseDriverArgs(["prune", "--stack", "dev"]);
    assert.ok(args.command === "prune");
    assert.deepEqual(args.prune, { keep: 3, olderThanDays: 30, apply: false });
  });

  it("reads --keep, --older-than (days, 'd' allowed) and --apply", () => {
    const args = parseDriverArgs(["prune", "--stack", "prod", "--keep", "5", "--older-than", "90d", "--apply"]);
    assert.ok(args.command === "prune");
    assert.deepEqual(args.prune, { keep: 5, olderThanDays: 90, apply: true });
  });

  it("refuses bad values and prune's options on other commands", () => {
    assert.throws(() => parseDriverArgs(["prune", "--stack", "dev", "--keep", "two"]), /pipeline-usage: --keep must be a whole number from 0/);
    assert.throws(() => parseDriverArgs(["prune", "--stack", "dev", "--older-than", "0"]), /--older-than must be a whole number from 1/);
    assert.throws(() => parseDriverArgs(["up", "--stack", "dev", "--apply"]), /--apply applies to prune, sweep only/);
  });
});
