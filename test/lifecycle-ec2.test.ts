/**
 * The lifecycle's EC2 layer (src/lifecycle/ec2.ts): listings follow NextToken to the last page
 * (aws-sdk-client-mock), and a throttled call is retried by the client's own retry strategy (the
 * real SDK middleware stack over an in-process HTTP handler that answers like EC2).
 */
import { strict as assert } from "node:assert";
import { Readable } from "node:stream";
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from "@aws-sdk/client-ec2";
import { mockClient, type AwsClientStub } from "aws-sdk-client-mock";
import {
  RegionalEc2,
  RETRY_CONFIG,
  deleteSnapshot,
  deregisterImage,
  describeSnapshots,
  instanceImageUses,
  launchTemplateImageUses,
  listProjectImages,
} from "../src/lifecycle/ec2.ts";
import { describePins, isProjectImage, pinnedBy } from "../src/lifecycle/tags.ts";

const REGION = "eu-west-1";

function awsError(name: string): Error {
  return Object.assign(new Error(`${name} (stub)`), { name, $metadata: {} });
}

function image(id: string, stage: string) {
  return {
    ImageId: id,
    Name: `jira-images-${stage}-${id}`,
    OwnerId: "123456789012",
    CreationDate: "2026-01-01T00:00:00.000Z",
    State: "available",
    Tags: [
      { Key: "jira-images:stage", Value: stage },
      { Key: "jira-images:stack", Value: "dev" },
      { Key: "jira-images:managed-by", Value: "packer" },
    ],
    BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: `snap-${id.slice(4)}`, VolumeSize: 30 } }],
  };
}

describe("lifecycle EC2 layer: listings page through NextToken (aws-sdk-client-mock)", () => {
  // Made in a hook, not at load: another spec file's restore() of its own EC2Client mock would undo it.
  let ec2: AwsClientStub<EC2Client>;
  before(() => (ec2 = mockClient(EC2Client)));
  afterEach(() => ec2.reset());
  after(() => ec2.restore());

  it("lists the stack's images of every page, by their lineage tags, skipping deregistered ones", async () => {
    // The paginator reuses its input object, so the token each call was sent with is noted as it is sent.
    const tokens: Array<string | undefined> = [];
    ec2.on(DescribeImagesCommand).callsFake((input: { NextToken?: string }) => {
      tokens.push(input.NextToken);
      return input.NextToken === undefined
        ? { Images: [image("ami-0000000000000001a", "base")], NextToken: "page-2" }
        : { Images: [image("ami-0000000000000002b", "jira"), { ...image("ami-0000000000000003c", "jira"), State: "deregistered" }] };
    });
    const images = await listProjectImages(new EC2Client({ region: REGION }), REGION, { stack: "dev" });

    assert.deepEqual(images.map((i) => i.imageId), ["ami-0000000000000001a", "ami-0000000000000002b"]);
    assert.deepEqual(images[1]!.snapshots, [{ snapshotId: "snap-0000000000000002b", volumeSizeGiB: 30 }]);
    assert.equal(images[0]!.tags["jira-images:stage"], "base");
    const calls = ec2.commandCalls(DescribeImagesCommand).map((c) => c.args[0].input);
    assert.deepEqual(tokens, [undefined, "page-2"]);
    assert.deepEqual(calls[0]!.Owners, ["self"]);
    assert.deepEqual(calls[0]!.Filters, [
      { Name: "tag:jira-images:managed-by", Values: ["packer"] },
      { Name: "tag:jira-images:stack", Values: ["dev"] },
    ]);
    assert.equal(calls[0]!.IncludeDeprecated, true, "deprecated images are the ones prune is for");
  });

  it("collects the images of live instances on every page (running and stopped, not terminated)", async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce({ Reservations: [{ Instances: [{ InstanceId: "i-1", ImageId: "ami-1", State: { Name: "running" } }] }], NextToken: "n" })
      .resolvesOnce({ Reservations: [{ Instances: [{ InstanceId: "i-2", ImageId: "ami-2", State: { Name: "stopped" } }] }] });
    const uses = await instanceImageUses(new EC2Client({ region: REGION }));
    assert.deepEqual(uses, [
      { imageId: "ami-1", by: "instance i-1 (running)" },
      { imageId: "ami-2", by: "instance i-2 (stopped)" },
    ]);
    const input = ec2.commandCalls(DescribeInstancesCommand)[0]!.args[0].input;
    assert.deepEqual(input.Filters, [{ Name: "instance-state-name", Values: ["pending", "running", "shutting-down", "stopping", "stopped"] }]);
  });

  it("reads every version of every launch template, across pages of both", async () => {
    ec2
      .on(DescribeLaunchTemplatesCommand)
      .resolvesOnce({ LaunchTemplates: [{ LaunchTemplateId: "lt-a", LaunchTemplateName: "app" }], NextToken: "t" })
      .resolvesOnce({ LaunchTemplates: [{ LaunchTemplateId: "lt-b", LaunchTemplateName: "ssm" }] });
    ec2
      .on(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateId: "lt-a" })
      .resolvesOnce({ LaunchTemplateVersions: [{ VersionNumber: 1, LaunchTemplateData: { ImageId: "ami-old" } }], NextToken: "v" })
      .resolvesOnce({ LaunchTemplateVersions: [{ VersionNumber: 2, LaunchTemplateData: { ImageId: "ami-new" } }, { VersionNumber: 3, LaunchTemplateData: {} }] });
    ec2
      .on(DescribeLaunchTemplateVersionsCommand, { LaunchTemplateId: "lt-b" })
      .resolves({ LaunchTemplateVersions: [{ VersionNumber: 1, LaunchTemplateData: { ImageId: "resolve:ssm:/golden/ami" } }] });
    const { uses, unresolved } = await launchTemplateImageUses(new EC2Client({ region: REGION }));
    assert.deepEqual(uses, [
      { imageId: "ami-old", by: "launch template lt-a (app) version 1" },
      { imageId: "ami-new", by: "launch template lt-a (app) version 2" },
    ]);
    assert.deepEqual(unresolved, ["launch template lt-b (ssm) version 1 launches resolve:ssm:/golden/ami"]);
  });

  it("describes snapshots through a filter, so that one already deleted is left out rather than failing the call", async () => {
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [{ SnapshotId: "snap-1", VolumeSize: 30, FullSnapshotSizeInBytes: 2 * 1024 ** 3 }] });
    const found = await describeSnapshots(new EC2Client({ region: REGION }), ["snap-1", "snap-gone"]);
    assert.deepEqual(found.map((s) => [s.snapshotId, s.fullSizeBytes, s.volumeSizeGiB]), [["snap-1", 2 * 1024 ** 3, 30]]);
    assert.deepEqual(ec2.commandCalls(DescribeSnapshotsCommand)[0]!.args[0].input.Filters, [{ Name: "snapshot-id", Values: ["snap-1", "snap-gone"] }]);
  });

  it("treats an image or snapshot already gone as done, and any other error as an error", async () => {
    ec2.on(DeregisterImageCommand, { ImageId: "ami-gone" }).rejects(awsError("InvalidAMIID.NotFound"));
    ec2.on(DeregisterImageCommand, { ImageId: "ami-denied" }).rejects(awsError("UnauthorizedOperation"));
    ec2.on(DeregisterImageCommand, { ImageId: "ami-1" }).resolves({});
    ec2.on(DeleteSnapshotCommand, { SnapshotId: "snap-gone" }).rejects(awsError("InvalidSnapshot.NotFound"));
    ec2.on(DeleteSnapshotCommand, { SnapshotId: "snap-used" }).rejects(awsError("InvalidSnapshot.InUse"));
    const client = new EC2Client({ region: REGION });
    assert.equal(await deregisterImage(client, "ami-1"), "deregistered");
    assert.equal(await deregisterImage(client, "ami-gone"), "gone");
    await assert.rejects(deregisterImage(client, "ami-denied"), /UnauthorizedOperation/);
    assert.equal(await deleteSnapshot(client, "snap-gone"), "gone");
    await assert.rejects(deleteSnapshot(client, "snap-used"), /InvalidSnapshot.InUse/);
  });
});

/** An HTTP handler answering like EC2's Query API: the queued responses in order, recording each request's action. */
function ec2Answers(answers: Array<{ status: number; body: string }>) {
  const actions: string[] = [];
  return {
    actions,
    handler: {
      async handle(request: { body?: unknown }) {
        actions.push(new URLSearchParams(String(request.body ?? "")).get("Action") ?? "?");
        const answer = answers.shift();
        if (answer === undefined) throw new Error("no answer left");
        return { response: { statusCode: answer.status, headers: { "content-type": "text/xml" }, body: Readable.from([Buffer.from(answer.body)]) } };
      },
    },
  };
}

const THROTTLED = {
  status: 503,
  body: `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>r1</RequestID></Response>`,
};
const THROTTLING_EXCEPTION = {
  status: 400,
  body: `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>ThrottlingException</Code><Message>Rate exceeded</Message></Error></Errors><RequestID>r2</RequestID></Response>`,
};
const ONE_IMAGE = {
  status: 200,
  body:
    `<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r3</requestId><imagesSet><item>` +
    `<imageId>ami-0000000000000001a</imageId><imageState>available</imageState><creationDate>2026-01-01T00:00:00.000Z</creationDate>` +
    `<tagSet><item><key>jira-images:managed-by</key><value>packer</value></item><item><key>jira-images:pinned-by:prod</key><value>organization/jira-images/prod</value></item></tagSet>` +
    `</item></imagesSet></DescribeImagesResponse>`,
};

describe("lifecycle EC2 layer: a throttled call is retried (real SDK retry middleware)", () => {
  it("uses the adaptive retry mode with room for several retries", () => {
    assert.equal(RETRY_CONFIG.retryMode, "adaptive");
    assert.ok(RETRY_CONFIG.maxAttempts >= 5);
  });

  it("gets the answer after EC2's RequestLimitExceeded and a ThrottlingException", async function () {
    this.timeout(15_000);
    const ec2 = ec2Answers([THROTTLED, THROTTLING_EXCEPTION, ONE_IMAGE]);
    const regional = new RegionalEc2({ requestHandler: ec2.handler, credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "x" } });
    try {
      const images = await listProjectImages(regional.client(REGION), REGION);
      assert.deepEqual(images.map((i) => i.imageId), ["ami-0000000000000001a"]);
      assert.deepEqual(pinnedBy(images[0]!.tags), ["organization/jira-images/prod"]);
      assert.deepEqual(ec2.actions, ["DescribeImages", "DescribeImages", "DescribeImages"]);
    } finally {
      regional.destroy();
    }
  });

  it("gives up with the throttling error once its attempts are spent (a caller reports it and goes on)", async function () {
    this.timeout(30_000);
    const ec2 = ec2Answers(Array.from({ length: 3 }, () => ({ ...THROTTLED })));
    const regional = new RegionalEc2({ requestHandler: ec2.handler, maxAttempts: 3, credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "x" } });
    try {
      await assert.rejects(listProjectImages(regional.client(REGION), REGION), { name: "RequestLimitExceeded" });
      assert.equal(ec2.actions.length, 3);
    } finally {
      regional.destroy();
    }
  });
});

describe("lifecycle tags: pins and ownership", () => {
  it("names every pinning stack, from the tag's value or else its key", () => {
    const tags = { "jira-images:pinned-by:prod": "organization/jira-images/prod", "jira-images:pinned-by:staging": "", "jira-images:stage": "jira" };
    assert.deepEqual(pinnedBy(tags), ["organization/jira-images/prod", "staging"]);
    assert.equal(
      describePins(tags),
      "pinned by stacks organization/jira-images/prod, staging (tags jira-images:pinned-by:prod, jira-images:pinned-by:staging)",
    );
    assert.deepEqual(pinnedBy({ "jira-images:pinned-by:": "x", "jira-images:stage": "jira" }), [], "a key without a stack is no pin");
  });

  it("recognises the project's images by managed-by, stack and stage", () => {
    const tags = { "jira-images:managed-by": "packer", "jira-images:stack": "dev", "jira-images:stage": "jira" };
    assert.ok(isProjectImage(tags));
    assert.ok(isProjectImage(tags, { stack: "dev", stage: "jira" }));
    assert.ok(!isProjectImage(tags, { stack: "prod" }));
    assert.ok(!isProjectImage({ ...tags, "jira-images:managed-by": "someone" }));
  });
});
