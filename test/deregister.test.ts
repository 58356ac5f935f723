/**
 * Removing a replaced stage's images: the rules with a stubbed EC2 layer, and the delete command's
 * CLI for real (its no-op and bad-input paths, and against a stand-in EC2 Query API on loopback).
 */
import { strict as assert } from "node:assert";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { execa } from "execa";
import { DeregisterRefused, deregisterStageImages, type Ec2Layer, type ImageRecord, type SnapshotRecord } from "../src/runner/deregister.ts";
import type { StageResult } from "../src/runner/result.ts";
import { PROJECT_ROOT, fakeAmi, runnerStdout } from "./helpers/pulumi-mocks.ts";

const CLI = join(PROJECT_ROOT, "src", "runner", "deregister-cli.ts");
const PREFIX_LINE = /^stage-runner: \[[^\]]+\] /;

function ownTags(stage: string): Record<string, string> {
  return { "jira-images:stage": stage, "jira-images:managed-by": "packer", Name: `jira-images-${stage}-20250101` };
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
  const addImage = (r: string, imageId: string, tags: Record<string, string>, snapshotIds: string[]) => {
    region(r).images.set(imageId, { imageId, snapshotIds, tags });
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
}

const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const tagSet = (tags: Record<string, string>) =>
  `<tagSet>${Object.entries(tags).map(([k, v]) => `<item><key>${xml(k)}</key><value>${xml(v)}</value></item>`).join("")}</tagSet>`;

/**
 * A stand-in for the EC2 Query API on 127.0.0.1: DescribeImages, DeregisterImage, DeleteSnapshot,
 * DescribeSnapshots over in-memory images per region (read from the request's SigV4 scope).
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
    const id = params.get("ImageId.1") ?? params.get("ImageId") ?? params.get("SnapshotId") ?? "";
    calls.push(`${action} ${region} ${id}`);
    const key = `${region}/${id}`;
    switch (action) {
      case "DescribeImages": {
        const image = images.get(key);
        if (!image) return [400, error("InvalidAMIID.NotFound")];
        const devices = image.snapshots.map((s) => `<item><deviceName>/dev/xvda</deviceName><ebs><snapshotId>${s}</snapshotId></ebs></item>`).join("");
        return [200, answer(action, `<imagesSet><item><imageId>${id}</imageId><imageState>available</imageState><blockDeviceMapping>${devices}</blockDeviceMapping>${tagSet(image.tags)}</item></imagesSet>`)];
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
    AWS_ACCESS_KEY_ID: "AKIDTESTDUMMY",
    AWS_SECRET_ACCESS_KEY: "dummy-secret-for-a-loopback-server",
    AWS_MAX_ATTEMPTS: "1",
  });

  it("deregisters every region's image and deletes its snapshot through the SDK, and a gone image is fine", async () => {
    images.set(`eu-west-1/${fakeAmi("custom-dev", "eu-west-1")}`, { tags: ownTags("custom-dev"), snapshots: ["snap-0aaaaaaaaaaaaaaa1"] });
    const run = await runCli(["--stage", "custom-dev"], env(runnerStdout("custom-dev", regions)));
    assert.equal(run.exitCode, 0, run.stderrLines.join("\n"));
    assertStderr(run, new RegExp(`deregistered ${fakeAmi("custom-dev", "eu-west-1")} in eu-west-1$`));
    assertStderr(run, /deleted snapshot snap-0aaaaaaaaaaaaaaa1 /);
    assertStderr(run, new RegExp(`${fakeAmi("custom-dev", "eu-central-1")} in eu-central-1 is already deregistered$`));
    assert.deepEqual(ec2.calls.filter((c) => !c.startsWith("DescribeSnapshots")), [
      `DescribeImages eu-central-1 ${fakeAmi("custom-dev", "eu-central-1")}`,
      `DescribeImages eu-west-1 ${fakeAmi("custom-dev", "eu-west-1")}`,
      `DeregisterImage eu-west-1 ${fakeAmi("custom-dev", "eu-west-1")}`,
      "DeleteSnapshot eu-west-1 snap-0aaaaaaaaaaaaaaa1",
    ]);
  });

  it("refuses (exit 1) an image tagged for another stage, naming image, region and stage", async () => {
    ec2.calls.length = 0;
    images.set(`eu-west-1/${fakeAmi("jira", "eu-west-1")}`, { tags: ownTags("custom-prod"), snapshots: ["snap-0bbbbbbbbbbbbbbb2"] });
    const run = await runCli(["--stage", "jira"], env(runnerStdout("jira", ["eu-west-1"])));
    assert.equal(run.exitCode, 1);
    assertStderr(run, /^stage-runner: \[jira\] DEREGISTER_REFUSED: stage jira: /);
    assertStderr(run, new RegExp(`${fakeAmi("jira", "eu-west-1")} in eu-west-1 has jira-images:stage="custom-prod"`));
    assert.deepEqual(ec2.calls, [`DescribeImages eu-west-1 ${fakeAmi("jira", "eu-west-1")}`]);
  });
});
