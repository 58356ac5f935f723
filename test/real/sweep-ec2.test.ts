/**
 * `sweep` with the real AWS SDK against moto's emulated EC2: a killed build's instance, volume,
 * security group, key pair and AMI (tagged as Packer tags them) are listed by a dry run, removed by
 * --apply, and a second sweep finds nothing; a live run's and a pinned image stay.
 */
import assert from "node:assert/strict";
import { copyFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  CreateImageCommand,
  CreateKeyPairCommand,
  CreateSecurityGroupCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  DescribeVolumesCommand,
  RunInstancesCommand,
  type EC2Client,
  type ResourceType,
} from "@aws-sdk/client-ec2";
import { runSweep, SWEEP_EXIT } from "../../src/driver/sweep-command.ts";
import { useMoto } from "../helpers/moto.ts";
import { tempDir } from "../helpers/temp-dir.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const REGION = "eu-west-1"; // Pulumi.dev.yaml's region
const NOW = Date.parse("2026-12-05T00:00:00Z");
const DEAD_RUN = "20261204T100000Z-0000dead";
const YOUNG_RUN = "20261204T233000Z-00000001";

function runTags(type: ResourceType, runId: string, extra: Record<string, string> = {}) {
  const tags = { "jira-images:managed-by": "packer", "jira-images:stack": "dev", "jira-images:stage": "jira", "jira-images:run-id": runId, ...extra };
  return { ResourceType: type, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) };
}

async function sourceAmi(ec2: EC2Client): Promise<string> {
  const { Images } = await ec2.send(new DescribeImagesCommand({ Owners: ["amazon"], Filters: [{ Name: "root-device-type", Values: ["ebs"] }] }));
  assert.ok(Images?.[0]?.ImageId, "moto lists no EBS-backed image of owner amazon");
  return Images[0].ImageId;
}

describe("sweep with the AWS SDK against moto (emulated EC2)", function () {
  this.timeout(60_000);
  const moto = useMoto();
  const lines: string[] = [];
  let root: string;

  const sweep = (apply: boolean) => {
    lines.length = 0;
    return runSweep(
      { stack: "dev", apply },
      {
        root,
        env: {},
        io: { stdout: () => undefined, stderr: (t: string) => void lines.push(...t.split("\n").filter(Boolean)), stderrIsTTY: false },
        now: () => NOW,
        readState: async () => ({ version: 3, deployment: { resources: [] } }),
        ec2Config: { endpoint: moto.endpoint, credentials: { accessKeyId: "testing", secretAccessKey: "testing" } },
        terminateWaitSeconds: 30,
      },
    );
  };

  it("dry run lists a killed build's leftovers, --apply removes them, a second sweep finds nothing", async () => {
    root = tempDir("sweep-moto-");
    for (const f of ["Pulumi.yaml", "Pulumi.dev.yaml"]) copyFileSync(join(ROOT, f), join(root, f));
    const ec2 = moto.ec2(REGION);
    const ami = await sourceAmi(ec2);
    const { GroupId } = await ec2.send(new CreateSecurityGroupCommand({ GroupName: "packer_6750a1b2-0000-1111-2222-333344445555", Description: "Temporary group for Packer", TagSpecifications: [runTags("security-group", DEAD_RUN)] }));
    await ec2.send(new CreateKeyPairCommand({ KeyName: "packer_6750a1b2-aaaa-bbbb-cccc-ddddeeeeffff", TagSpecifications: [runTags("key-pair", DEAD_RUN)] }));
    await ec2.send(new CreateKeyPairCommand({ KeyName: "packer_young", TagSpecifications: [runTags("key-pair", YOUNG_RUN)] }));
    const { Instances } = await ec2.send(
      new RunInstancesCommand({
        ImageId: ami,
        MinCount: 1,
        MaxCount: 1,
        InstanceType: "t3.micro",
        KeyName: "packer_6750a1b2-aaaa-bbbb-cccc-ddddeeeeffff",
        SecurityGroupIds: [GroupId!],
        TagSpecifications: [runTags("instance", DEAD_RUN), runTags("volume", DEAD_RUN)],
      }),
    );
    const instanceId = Instances![0]!.InstanceId!;
    const { VolumeId } = await ec2.send(new CreateVolumeCommand({ AvailabilityZone: `${REGION}a`, Size: 8, TagSpecifications: [runTags("volume", DEAD_RUN)] }));
    const image = (name: string, extra: Record<string, string> = {}) =>
      ec2.send(new CreateImageCommand({ InstanceId: instanceId, Name: name, TagSpecifications: [runTags("image", DEAD_RUN, extra)] }));
    const { ImageId: orphan } = await image("jira-images-jira-orphan");
    const { ImageId: pinned } = await image("jira-images-jira-pinned", { "jira-images:pinned-by:prod": "prod" });

    assert.equal(await sweep(false), SWEEP_EXIT.ok, lines.join("\n"));
    const dry = lines.join("\n");
    for (const id of [instanceId, VolumeId!, GroupId!, "packer_6750a1b2-aaaa-bbbb-cccc-ddddeeeeffff", orphan!]) assert.match(dry, new RegExp(`would .* ${id}`), `${id} not listed:\n${dry}`);
    assert.match(dry, new RegExp(`keep image ${pinned} \\(${REGION}\\): pinned by stack prod`));
    assert.match(dry, /keep key-pair packer_young .*may still be running/);
    const { Reservations } = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    assert.equal(Reservations?.[0]?.Instances?.[0]?.State?.Name, "running", "a dry run terminated the instance");

    assert.equal(await sweep(true), SWEEP_EXIT.ok, lines.join("\n"));
    const after = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    assert.equal(after.Reservations?.[0]?.Instances?.[0]?.State?.Name, "terminated");
    const volumes = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: "tag:jira-images:run-id", Values: [DEAD_RUN] }] }));
    assert.deepEqual((volumes.Volumes ?? []).map((v) => v.VolumeId), []);
    const groups = await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: "group-name", Values: ["packer_*"] }] }));
    assert.deepEqual((groups.SecurityGroups ?? []).map((g) => g.GroupId), []);
    const keys = await ec2.send(new DescribeKeyPairsCommand({}));
    assert.deepEqual((keys.KeyPairs ?? []).map((k) => k.KeyName).filter((k) => k?.startsWith("packer_")), ["packer_young"]);
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ["self"] }));
    assert.deepEqual((images.Images ?? []).map((i) => i.ImageId), [pinned]);

    assert.equal(await sweep(false), SWEEP_EXIT.ok, lines.join("\n"));
    assert.doesNotMatch(lines.join("\n"), /would /, `a second sweep found something:\n${lines.join("\n")}`);
  });
});
