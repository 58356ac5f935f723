/**
 * Removing a replaced stage's images: the rules with a stubbed EC2 layer, and the delete command's
 * CLI for real (its no-op and bad-input paths, and against a stand-in EC2 Query API on loopback).
 */
import { strict as assert } from "node:assert";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand, DescribeSnapshotsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { mockClient } from "aws-sdk-client-mock";
import { execa } from "execa";
import { sdkEc2Layer } from "../src/runner/deregister-ec2.ts";
import { DeregisterRefused, deregisterStageImages, type Ec2Layer, type ImageRecord, type SnapshotRecord } from "../src/runner/deregister.ts";
import type { StageResult } from "../src/runner/result.ts";
import { PROJECT_ROOT, fakeAmi, runnerStdout } from "./helpers/pulumi-mocks.ts";

const CLI = join(PROJECT_ROOT, "src", "runner", "deregister-cli.ts");
const PREFIX_LINE = /^stage-runner: \[[^\]]+\] /;

const ACCOUNT = "123456789012";

function ownTags(stage: string, stack = "dev"): Record<string, string> {
  return { "jira-images:stage": stage, "jira-images:stack": stack, "jira-images:managed-by": "packer", Name: `jira-images-${stage}-20250101` };
}

function resultOf(stage: string, regions: string[]): StageResult {
  return JSON.parse(runnerStdout(stage, regions)) as StageResult;
}

interface StubRegion {
  images: Map<string, ImageRecord>;
  snapshots: Map<string, SnapshotRecord & { imageId: string }>;
}

/** An in-memory EC2 that records every call, `fail` making one region's calls throw. */
function stubEc2(fail?: { region: string; op: keyof Ec2Layer }) {
  const regions = new Map<string, StubRegion>();
  const calls: string[] = [];
  const region = (name: string): StubRegion => {
    if (!regions.has(name)) regions.set(name, { images: new Map(), snapshots: new Map() });
    return regions.get(name)!;
  };
  const guard = (op: keyof Ec2Layer, r: string, id: string) => {
    calls.push(`${op} ${r} ${id}`);
    if (fail && fail.region === r && fail.op === op) throw new Error(`UnauthorizedOperation: no ${op} in ${r}`);
  };
  const layer: Ec2Layer = {
    async callerAccount() {
      return ACCOUNT;
    },
    async describeImage(r, imageId) {
      guard("describeImage", r, imageId);
      return region(r).images.get(imageId);
    },
    async snapshotsOfImage(r, imageId) {
      guard("snapshotsOfImage", r, imageId);
      return [...region(r).snapshots.values()].filter((s) => s.imageId === imageId);
    },
    async deregisterImage(r, imageId) {
      guard("deregisterImage", r, imageId);
      region(r).images.delete(imageId);
    },
    async deleteSnapshot(r, snapshotId) {
      guard("deleteSnapshot", r, snapshotId);
      region(r).snapshots.delete(snapshotId);
    },
  };
  const addImage = (r: string, imageId: string, tags: Record<string, string>, snapshotIds: string[], ownerId = ACCOUNT) => {
    region(r).images.set(imageId, { imageId, ownerId, snapshotIds, tags });
    for (const snapshotId of snapshotIds) region(r).snapshots.set(snapshotId, { snapshotId, tags, imageId });
  };
  return { layer, calls, addImage, region };
}

describe("deregistering a replaced stage's images (stubbed EC2)", () => {
  const regions = ["eu-west-1", "eu-central-1"];

  it("deregisters the image, then deletes its snapshots, in every region of the old result", async () => {
    const ec2 = stubEc2();
    for (const r of regions) ec2.addImage(r, fakeAmi("jira", r), ownTags("jira"), [`snap-${r}-a`, `snap-${r}-b`]);
    const log: string[] = [];
    const outcome = await deregisterStageImages("jira", resultOf("jira", regions), ec2.layer, (l) => log.push(l));
    assert.deepEqual(outcome.failures, []);
    const central = fakeAmi("jira", "eu-central-1");
    const west = fakeAmi("jira", "eu-west-1");
    assert.deepEqual(ec2.calls, [
      `describeImage eu-central-1 ${central}`,
      `describeImage eu-west-1 ${west}`,
      `deregisterImage eu-central-1 ${central}`,
      "deleteSnapshot eu-central-1 snap-eu-central-1-a",
      "deleteSnapshot eu-central-1 snap-eu-central-1-b",
      `deregisterImage eu-west-1 ${west}`,
      "deleteSnapshot eu-west-1 snap-eu-west-1-a",
      "deleteSnapshot eu-west-1 snap-eu-west-1-b",
    ]);
    for (const r of regions) assert.equal(ec2.region(r).snapshots.size, 0);
    assert.ok(log.includes(`deregistered ${west} in eu-west-1`), log.join("\n"));
  });

  it("keeps an image another stack pins (a promotion), names that stack, and still removes the other regions' images", async () => {
    const ec2 = stubEc2();
    const west = fakeAmi("jira", "eu-west-1");
    const central = fakeAmi("jira", "eu-central-1");
    ec2.addImage("eu-west-1", west, { ...ownTags("jira"), "jira-images:pinned-by:prod": "organization/jira-images/prod" }, ["snap-pinned"]);
    ec2.addImage("eu-central-1", central, ownTags("jira"), ["snap-free"]);
    const log: string[] = [];
    const outcome = await deregisterStageImages({ stage: "jira", stack: "dev" }, resultOf("jira", regions), ec2.layer, (l) => log.push(l));
    assert.deepEqual(outcome.failures, [], "the delete succeeds, so dev's up goes on");
    assert.ok(ec2.region("eu-west-1").images.has(west) && ec2.region("eu-west-1").snapshots.has("snap-pinned"));
    assert.ok(!ec2.calls.includes(`deregisterImage eu-west-1 ${west}`));
    assert.ok(!ec2.region("eu-central-1").images.has(central));
    assert.ok(
      log.includes(`kept ${west} in eu-west-1: pinned by stack organization/jira-images/prod (tag jira-images:pinned-by:prod); not deregistered. prune removes it once no stack pins or uses it`),
      log.join("\n"),
    );
  });

  it("is content when an image is already gone, and deletes the snapshots an earlier run left", async () => {
    const ec2 = stubEc2();
    const west = fakeAmi("base", "eu-west-1");
    ec2.addImage("eu-west-1", west, ownTags("base"), ["snap-left"]);
    ec2.region("eu-west-1").images.delete(west);
    ec2.addImage("eu-west-1", "ami-0123456789abcdef0", ownTags("other"), ["snap-other"]);
    const log: string[] = [];
    const outcome = await deregisterStageImages("base", resultOf("base", ["eu-west-1"]), ec2.layer, (l) => log.push(l));
    assert.deepEqual(outcome.failures, []);
    assert.deepEqual([...ec2.region("eu-west-1").snapshots.keys()], ["snap-other"]);
    assert.ok(!ec2.calls.some((c) => c.startsWith("deregisterImage")));
    assert.match(log[0]!, /is already deregistered; 1 snapshot\(s\) left/);
    const again = await deregisterStageImages("base", resultOf("base", ["eu-west-1"]), ec2.layer, () => {});
    assert.deepEqual(again.failures, [], "a second run finds nothing and succeeds");
  });

  for (const [what, tags] of [
    ["an untagged image", {}],
    ["another stage's image", ownTags("custom-prod")],
    ["an image not built by Packer", { ...ownTags("jira"), "jira-images:managed-by": "someone" }],
  ] as const) {
    it(`refuses ${what} and deletes nothing in any region`, async () => {
      const ec2 = stubEc2();
      ec2.addImage("eu-central-1", fakeAmi("jira", "eu-central-1"), ownTags("jira"), ["snap-own"]);
      ec2.addImage("eu-west-1", fakeAmi("jira", "eu-west-1"), tags, ["snap-foreign"]);
      await assert.rejects(
        deregisterStageImages("jira", resultOf("jira", regions), ec2.layer, () => {}),
        (error: unknown) => {
          assert.ok(error instanceof DeregisterRefused);
          assert.match(error.message, /^DEREGISTER_REFUSED: stage jira: /);
          assert.match(error.details.join("\n"), new RegExp(`${fakeAmi("jira", "eu-west-1")} in eu-west-1 has jira-images:stage=`));
          return true;
        },
      );
      assert.deepEqual(ec2.calls.filter((c) => !c.startsWith("describeImage")), []);
    });
  }

  it("refuses an old result of another stage", async () => {
    const ec2 = stubEc2();
    await assert.rejects(deregisterStageImages("jira", resultOf("base", ["eu-west-1"]), ec2.layer, () => {}), DeregisterRefused);
    assert.deepEqual(ec2.calls, []);
  });

  for (const op of ["describeImage", "deregisterImage", "deleteSnapshot"] as const) {
    it(`reports a failing ${op} in one region and still cleans up the other`, async () => {
      const ec2 = stubEc2({ region: "eu-central-1", op });
      for (const r of regions) ec2.addImage(r, fakeAmi("jira", r), ownTags("jira"), [`snap-${r}`]);
      const outcome = await deregisterStageImages("jira", resultOf("jira", regions), ec2.layer, () => {});
      assert.equal(outcome.failures.length, 1);
      assert.match(outcome.failures[0]!, new RegExp(`^DEREGISTER_FAILED: ${fakeAmi("jira", "eu-central-1")} in eu-central-1: .*UnauthorizedOperation`));
      assert.equal(ec2.region("eu-west-1").images.size, 0);
      assert.equal(ec2.region("eu-west-1").snapshots.size, 0);
    });
  }
});

describe("deregistering through the SDK layer: stack tag and owner checks (aws-sdk-client-mock)", () => {
  const ec2 = mockClient(EC2Client);
  const sts = mockClient(STSClient);
  const west = fakeAmi("jira", "eu-west-1");
  const image = (tags: Record<string, string>, owner = ACCOUNT) => ({
    Images: [
      {
        ImageId: west,
        OwnerId: owner,
        State: "available" as const,
        BlockDeviceMappings: [{ DeviceName: "/dev/xvda", Ebs: { SnapshotId: "snap-0ddddddddddddddd4" } }],
        Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      },
    ],
  });
  const removals = () => [...ec2.commandCalls(DeregisterImageCommand), ...ec2.commandCalls(DeleteSnapshotCommand)].length;

  before(() => {
    // As in deregister-cli.ts: the SDK's Node-version warning is noise on Node 20, this project's floor.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  });
  beforeEach(() => {
    ec2.reset();
    sts.reset();
    sts.on(GetCallerIdentityCommand).resolves({ Account: ACCOUNT, Arn: `arn:aws:sts::${ACCOUNT}:assumed-role/deploy/ci` });
    ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
    ec2.on(DeregisterImageCommand).resolves({});
    ec2.on(DeleteSnapshotCommand).resolves({});
  });
  after(() => {
    ec2.restore();
    sts.restore();
  });

  it("deregisters this stack's image of the stage in the caller's account, snapshots included", async () => {
    ec2.on(DescribeImagesCommand).resolves(image(ownTags("jira", "dev")));
    const outcome = await deregisterStageImages({ stage: "jira", stack: "dev" }, resultOf("jira", ["eu-west-1"]), sdkEc2Layer(), () => {});
    assert.deepEqual(outcome.failures, []);
    assert.deepEqual(ec2.commandCalls(DeregisterImageCommand).map((c) => c.args[0].input.ImageId), [west]);
    assert.deepEqual(ec2.commandCalls(DeleteSnapshotCommand).map((c) => c.args[0].input.SnapshotId), ["snap-0ddddddddddddddd4"]);
    assert.equal(sts.commandCalls(GetCallerIdentityCommand).length, 1);
  });

  for (const [what, tags, owner, detail] of [
    ["another stack's image", ownTags("jira", "prod"), ACCOUNT, /jira-images:stack="prod", expected "jira", "packer", "dev"/],
    ["an image without a stack tag", { ...ownTags("jira"), "jira-images:stack": undefined }, ACCOUNT, /jira-images:stack=null/],
    ["an image of another account", ownTags("jira", "dev"), "210987654321", new RegExp(`owned by account 210987654321, the caller is account ${ACCOUNT}`)],
  ] as const) {
    it(`refuses ${what}, removing nothing`, async () => {
      const clean = Object.fromEntries(Object.entries(tags).filter(([, v]) => v !== undefined)) as Record<string, string>;
      ec2.on(DescribeImagesCommand).resolves(image(clean, owner));
      await assert.rejects(deregisterStageImages({ stage: "jira", stack: "dev" }, resultOf("jira", ["eu-west-1"]), sdkEc2Layer(), () => {}), (error: unknown) => {
        assert.ok(error instanceof DeregisterRefused);
        assert.match(error.details.join("\n"), detail);
        return true;
      });
      assert.equal(removals(), 0);
    });
  }

  it("removes nothing when the caller's account cannot be told", async () => {
    ec2.on(DescribeImagesCommand).resolves(image(ownTags("jira", "dev")));
    sts.on(GetCallerIdentityCommand).rejects(new Error("ExpiredToken: the security token included in the request is expired"));
    const outcome = await deregisterStageImages({ stage: "jira", stack: "dev" }, resultOf("jira", ["eu-west-1"]), sdkEc2Layer(), () => {});
    assert.match(outcome.failures.join("\n"), /^DEREGISTER_FAILED: cannot tell the caller's account \(sts:GetCallerIdentity\): .*ExpiredToken/);
    assert.equal(removals(), 0);
  });

  it("a delete recorded without --stack (images from before the stack tag) checks stage tags and account only, and says so", async () => {
    ec2.on(DescribeImagesCommand).resolves(image({ "jira-images:stage": "jira", "jira-images:managed-by": "packer" }));
    const log: string[] = [];
    const outcome = await deregisterStageImages("jira", resultOf("jira", ["eu-west-1"]), sdkEc2Layer(), (l) => log.push(l));
    assert.deepEqual(outcome.failures, []);
    assert.equal(ec2.commandCalls(DeregisterImageCommand).length, 1);
    assert.match(log.join("\n"), /no --stack given .*checked the stage tags and the account only/);
  });
});

interface CliRun {
  exitCode: number | undefined;
  stdout: string;
  stderrLines: string[];
}

/** The delete command as the provider runs it: `/bin/sh -c`, old result in the environment, no AWS credentials of the user. */
async function runCli(args: string[], env: Record<string, string | undefined>): Promise<CliRun> {
  const command = ["exec", "node", "--import", "tsx", CLI, ...args].map((w) => `'${w}'`).join(" ");
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("AWS_") && k !== "PULUMI_COMMAND_STDOUT"));
  const run = await execa("/bin/sh", ["-c", command], {
    cwd: PROJECT_ROOT,
    env: {
      ...clean,
      AWS_CONFIG_FILE: "/nonexistent/aws-config",
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
      AWS_EC2_METADATA_DISABLED: "true",
      ...env,
    },
    extendEnv: false,
    reject: false,
    timeout: 20_000,
  });
  return { exitCode: run.exitCode, stdout: run.stdout, stderrLines: run.stderr.split("\n").filter((l) => l !== "") };
}

function assertStderr(run: CliRun, pattern: RegExp): void {
  assert.equal(run.stdout, "", "nothing on stdout");
  for (const line of run.stderrLines) assert.match(line, PREFIX_LINE);
  assert.ok(run.stderrLines.some((l) => pattern.test(l)), `expected ${pattern} in:\n${run.stderrLines.join("\n")}`);
}

describe("deregister CLI (the stage command's delete)", () => {
  it("with no previous result (unset or empty) says there is nothing to deregister and exits 0", async () => {
    const runs = await Promise.all([undefined, "", "\n"].map((stdout) => runCli(["--stage", "base"], { PULUMI_COMMAND_STDOUT: stdout })));
    for (const run of runs) {
      assert.equal(run.exitCode, 0, run.stderrLines.join("\n"));
      assertStderr(run, /^stage-runner: \[base\] nothing to deregister/);
    }
  });

  it("fails (exit 2) on an old result it cannot read, or of another stage, naming the fix", async () => {
    const bad = ["==> amazon-ebs: done", '{"stage":"base"}', runnerStdout("jira", ["eu-west-1"])];
    const runs = await Promise.all(bad.map((stdout) => runCli(["--stage", "base"], { PULUMI_COMMAND_STDOUT: stdout })));
    for (const run of runs) {
      assert.equal(run.exitCode, 2);
      assertStderr(run, /^stage-runner: \[base\] DEREGISTER_INPUT_INVALID: /);
      assertStderr(run, /STAGE_OUTPUT_INVALID: stage base: /);
      assertStderr(run, /Fix: .*pulumi state delete/);
    }
  });

  it("fails (exit 2) without --stage", async () => {
    const run = await runCli([], {});
    assert.equal(run.exitCode, 2);
    assertStderr(run, /^stage-runner: \[\?\] USAGE: /);
  });
});

interface FakeImage {
  tags: Record<string, string>;
  snapshots: string[];
  /** Owning account; the caller's by default. */
  owner?: string;
}

const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const tagSet = (tags: Record<string, string>) =>
  `<tagSet>${Object.entries(tags).map(([k, v]) => `<item><key>${xml(k)}</key><value>${xml(v)}</value></item>`).join("")}</tagSet>`;

/**
 * A stand-in for the EC2 Query API on 127.0.0.1: DescribeImages, DeregisterImage, DeleteSnapshot,
 * DescribeSnapshots over in-memory images per region (read from the request's SigV4 scope), and
 * STS's GetCallerIdentity (account ACCOUNT) on the same port.
 */
function fakeEc2(images: Map<string, FakeImage>) {
  const calls: string[] = [];
  const answer = (action: string, body: string) =>
    `<${action}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-1</requestId>${body}</${action}Response>`;
  const error = (code: string) => `<Response><Errors><Error><Code>${code}</Code><Message>${code}</Message></Error></Errors><RequestID>r-1</RequestID></Response>`;
  const handle = (req: IncomingMessage, body: string): [number, string] => {
    const params = new URLSearchParams(body);
    const region = /Credential=[^/]+\/\d+\/([^/]+)\/ec2\//.exec(req.headers.authorization ?? "")?.[1] ?? "?";
    const action = params.get("Action")!;
    if (action === "GetCallerIdentity") {
      calls.push(action);
      return [
        200,
        `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:sts::${ACCOUNT}:assumed-role/deploy/ci</Arn><UserId>AROAEXAMPLE:ci</UserId><Account>${ACCOUNT}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
      ];
    }
    const id = params.get("ImageId.1") ?? params.get("ImageId") ?? params.get("SnapshotId") ?? "";
    calls.push(`${action} ${region} ${id}`);
    const key = `${region}/${id}`;
    switch (action) {
      case "DescribeImages": {
        const image = images.get(key);
        if (!image) return [400, error("InvalidAMIID.NotFound")];
        const devices = image.snapshots.map((s) => `<item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>${s}</snapshotId></ebs></item>`).join("");
        return [200, answer(action, `<imagesSet><item><imageId>${id}</imageId><imageOwnerId>${image.owner ?? ACCOUNT}</imageOwnerId><imageState>available</imageState><blockDeviceMapping>${devices}</blockDeviceMapping>${tagSet(image.tags)}</item></imagesSet>`)];
      }
      case "DescribeSnapshots":
        return [200, answer(action, "<snapshotSet/>")];
      case "DeregisterImage":
        if (!images.delete(key)) return [400, error("InvalidAMIID.NotFound")];
        return [200, answer(action, "<return>true</return>")];
      case "DeleteSnapshot":
        return [200, answer(action, "<return>true</return>")];
      default:
        return [400, error("InvalidAction")];
    }
  };
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      const [status, text] = handle(req, body);
      res.writeHead(status, { "content-type": "text/xml" }).end(text);
    });
  });
  server.unref();
  return {
    calls,
    async start(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("deregister CLI against a stand-in EC2 API on loopback", () => {
  const regions = ["eu-west-1", "eu-central-1"];
  const images = new Map<string, FakeImage>();
  const ec2 = fakeEc2(images);
  let endpoint: string;

  before(async () => {
    endpoint = await ec2.start();
  });
  after(() => ec2.stop());

  const env = (stdout: string) => ({
    PULUMI_COMMAND_STDOUT: stdout,
    AWS_ENDPOINT_URL_EC2: endpoint,
    AWS_ENDPOINT_URL_STS: endpoint,
    AWS_ACCESS_KEY_ID: "AKIDTESTDUMMY",
    AWS_SECRET_ACCESS_KEY: "dummy-secret-for-a-loopback-server",
    AWS_MAX_ATTEMPTS: "1",
  });

  it("deregisters every region's image and deletes its snapshot through the SDK, and a gone image is fine", async () => {
    images.set(`eu-west-1/${fakeAmi("custom-dev", "eu-west-1")}`, { tags: ownTags("custom-dev"), snapshots: ["snap-0aaaaaaaaaaaaaaa1"] });
    const run = await runCli(["--stage", "custom-dev", "--stack", "dev"], env(runnerStdout("custom-dev", regions)));
    assert.equal(run.exitCode, 0, run.stderrLines.join("\n"));
    assertStderr(run, new RegExp(`deregistered ${fakeAmi("custom-dev", "eu-west-1")} in eu-west-1$`));
    assertStderr(run, /deleted snapshot snap-0aaaaaaaaaaaaaaa1 /);
    assertStderr(run, new RegExp(`${fakeAmi("custom-dev", "eu-central-1")} in eu-central-1 is already deregistered$`));
    assert.deepEqual(ec2.calls.filter((c) => !c.startsWith("DescribeSnapshots")), [
      `DescribeImages eu-central-1 ${fakeAmi("custom-dev", "eu-central-1")}`,
      `DescribeImages eu-west-1 ${fakeAmi("custom-dev", "eu-west-1")}`,
      "GetCallerIdentity",
      `DeregisterImage eu-west-1 ${fakeAmi("custom-dev", "eu-west-1")}`,
      "DeleteSnapshot eu-west-1 snap-0aaaaaaaaaaaaaaa1",
    ]);
  });

  it("refuses (exit 1) an image tagged for another stage, naming image, region and stage", async () => {
    ec2.calls.length = 0;
    images.set(`eu-west-1/${fakeAmi("jira", "eu-west-1")}`, { tags: ownTags("custom-prod"), snapshots: ["snap-0bbbbbbbbbbbbbbb2"] });
    const run = await runCli(["--stage", "jira", "--stack", "dev"], env(runnerStdout("jira", ["eu-west-1"])));
    assert.equal(run.exitCode, 1);
    assertStderr(run, /^stage-runner: \[jira\] DEREGISTER_REFUSED: stage jira: /);
    assertStderr(run, new RegExp(`${fakeAmi("jira", "eu-west-1")} in eu-west-1 has jira-images:stage="custom-prod"`));
    assert.deepEqual(ec2.calls, [`DescribeImages eu-west-1 ${fakeAmi("jira", "eu-west-1")}`, "GetCallerIdentity"]);
  });

  it("refuses (exit 1) prod's image from dev's delete, and an image of another account, deleting nothing", async () => {
    ec2.calls.length = 0;
    images.set(`eu-west-1/${fakeAmi("base", "eu-west-1")}`, { tags: ownTags("base", "prod"), snapshots: ["snap-0ccccccccccccccc3"] });
    images.set(`eu-central-1/${fakeAmi("base", "eu-central-1")}`, { tags: ownTags("base", "dev"), snapshots: [], owner: "210987654321" });
    const run = await runCli(["--stage", "base", "--stack", "dev"], env(runnerStdout("base", ["eu-west-1", "eu-central-1"])));
    assert.equal(run.exitCode, 1);
    assertStderr(run, /^stage-runner: \[base\] DEREGISTER_REFUSED: stage base: /);
    assertStderr(run, new RegExp(`${fakeAmi("base", "eu-west-1")} in eu-west-1 has .*jira-images:stack="prod", expected .*"dev"`));
    assertStderr(run, new RegExp(`${fakeAmi("base", "eu-central-1")} in eu-central-1 is owned by account 210987654321, the caller is account ${ACCOUNT}`));
    assert.deepEqual(ec2.calls.filter((c) => c.startsWith("Deregister") || c.startsWith("DeleteSnapshot")), []);
    assert.ok(images.has(`eu-west-1/${fakeAmi("base", "eu-west-1")}`));
  });
});
