/**
 * The deregister command (src/runner/deregister-cli.ts, a stage command's `delete`) with the real
 * AWS SDK against moto's emulated EC2 API: the images an old stage result names, and their
 * snapshots, go in every region; an image without the project's tags makes it refuse and touch nothing.
 */
import assert from "node:assert/strict";
import { resolve } from "node:path";
import {
  CopyImageCommand,
  CreateImageCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
} from "@aws-sdk/client-ec2";
import { execa } from "execa";
import { useMoto } from "../helpers/moto.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const CLI = resolve(ROOT, "src/runner/deregister-cli.ts");
const BUILD_REGION = "eu-west-1";
const COPY_REGION = "eu-central-1";

/** The tags packer/common/source.pkr.hcl puts on a stage's images and snapshots. */
function stageTags(stage: string, stack: string): Array<{ Key: string; Value: string }> {
  return [
    { Key: "jira-images:stage", Value: stage },
    { Key: "jira-images:stack", Value: stack },
    { Key: "jira-images:managed-by", Value: "packer" },
  ];
}

async function sourceAmi(ec2: EC2Client): Promise<string> {
  const { Images } = await ec2.send(
    new DescribeImagesCommand({ Owners: ["amazon"], Filters: [{ Name: "root-device-type", Values: ["ebs"] }, { Name: "architecture", Values: ["x86_64"] }] }),
  );
  const id = Images?.[0]?.ImageId;
  assert.ok(id, "moto lists no EBS-backed x86_64 image of owner amazon");
  return id;
}

async function snapshotsOf(ec2: EC2Client, imageId: string): Promise<string[]> {
  const { Images } = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
  return (Images?.[0]?.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));
}

async function imageExists(ec2: EC2Client, imageId: string): Promise<boolean> {
  try {
    const { Images } = await ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] }));
    return (Images ?? []).some((i) => i.ImageId === imageId && i.State !== "deregistered");
  } catch (error) {
    if (error instanceof Error && error.name === "InvalidAMIID.NotFound") return false;
    throw error;
  }
}

async function snapshotExists(ec2: EC2Client, snapshotId: string): Promise<boolean> {
  try {
    const { Snapshots } = await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }));
    return (Snapshots ?? []).length > 0;
  } catch (error) {
    if (error instanceof Error && error.name === "InvalidSnapshot.NotFound") return false;
    throw error;
  }
}

describe("deregister CLI with the AWS SDK against moto (emulated EC2)", function () {
  this.timeout(30_000);
  const moto = useMoto();

  /** An image made like a stage's (an instance's volume, tagged, copied to a second region). */
  async function stageImage(name: string, tags: Array<{ Key: string; Value: string }>) {
    const build = moto.ec2(BUILD_REGION);
    const copy = moto.ec2(COPY_REGION);
    const { Instances } = await build.send(new RunInstancesCommand({ ImageId: await sourceAmi(build), MinCount: 1, MaxCount: 1, InstanceType: "t3.micro" }));
    const instanceId = Instances![0]!.InstanceId!;
    const { ImageId: builtId } = await build.send(new CreateImageCommand({ InstanceId: instanceId, Name: name }));
    await build.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    const { ImageId: copyId } = await copy.send(new CopyImageCommand({ SourceImageId: builtId!, SourceRegion: BUILD_REGION, Name: name }));
    const images = { [BUILD_REGION]: builtId!, [COPY_REGION]: copyId! };
    const snapshots: Record<string, string[]> = {};
    for (const [region, imageId] of Object.entries(images)) {
      const ec2 = moto.ec2(region);
      snapshots[region] = await snapshotsOf(ec2, imageId);
      assert.ok(snapshots[region].length > 0, `moto made no snapshot for ${imageId} in ${region}`);
      await ec2.send(new CreateTagsCommand({ Resources: [imageId, ...snapshots[region]], Tags: tags }));
    }
    return { images, snapshots };
  }

  /** The delete as the dev stack's stage command runs it, with the old result in PULUMI_COMMAND_STDOUT. */
  function deregister(stage: string, images: Record<string, string>) {
    const result = { stage, amiId: images[BUILD_REGION], region: BUILD_REGION, amis: images, logFile: "/dev/null" };
    return execa(process.execPath, ["--import", "tsx", CLI, "--stage", stage, "--stack", "dev"], {
      cwd: ROOT,
      env: { ...moto.env(), PULUMI_COMMAND_STDOUT: `${JSON.stringify(result)}\n` },
      reject: false,
    });
  }

  it("removes the old result's image and its snapshots in every region", async function () {
    const { images, snapshots } = await stageImage("jira-images-jira-old", stageTags("jira", "dev"));
    const run = await deregister("jira", images);
    assert.equal(run.exitCode, 0, String(run.stderr));
    assert.equal(run.stdout, "");
    for (const [region, imageId] of Object.entries(images)) {
      const ec2 = moto.ec2(region);
      assert.equal(await imageExists(ec2, imageId), false, `${imageId} in ${region} still exists`);
      for (const snapshotId of snapshots[region]!) {
        assert.equal(await snapshotExists(ec2, snapshotId), false, `${snapshotId} of ${imageId} in ${region} still exists`);
      }
      assert.match(String(run.stderr), new RegExp(`deregistered ${imageId} in ${region}`));
    }

    // A second run (the delete retried after a failure) finds nothing left and succeeds.
    const again = await deregister("jira", images);
    assert.equal(again.exitCode, 0, String(again.stderr));
    assert.match(String(again.stderr), /already deregistered/);
  });

  it("refuses an image without the project's tags, another stage's or another stack's, and touches nothing in any region", async function () {
    const cases = [
      await stageImage("someone-elses-image", [{ Key: "team", Value: "other" }]),
      await stageImage("jira-images-base-old", stageTags("base", "dev")),
      await stageImage("jira-images-jira-prod", stageTags("jira", "prod")),
    ];
    for (const { images, snapshots } of cases) {
      const run = await deregister("jira", images);
      assert.equal(run.exitCode, 1, String(run.stderr));
      assert.match(String(run.stderr), /DEREGISTER_REFUSED: stage jira: not deregistering anything/);
      for (const [region, imageId] of Object.entries(images)) {
        const ec2 = moto.ec2(region);
        assert.equal(await imageExists(ec2, imageId), true, `${imageId} in ${region} was removed`);
        for (const snapshotId of snapshots[region]!) assert.equal(await snapshotExists(ec2, snapshotId), true);
      }
    }
  });

  it("refuses an image of another account even when it carries the stage's tags", async function () {
    // moto's catalogue images belong to Amazon's accounts, not to the caller's.
    const ec2 = moto.ec2(BUILD_REGION);
    const foreign = await sourceAmi(ec2);
    await ec2.send(new CreateTagsCommand({ Resources: [foreign], Tags: stageTags("jira", "dev") }));
    const run = await deregister("jira", { [BUILD_REGION]: foreign });
    assert.equal(run.exitCode, 1, String(run.stderr));
    assert.match(String(run.stderr), new RegExp(`${foreign} in ${BUILD_REGION} is owned by account \\d+, the caller is account \\d+`));
    assert.equal(await imageExists(ec2, foreign), true);
  });
});
