/**
 * The stage runner (src/runner/cli.ts) running the real amazon-ebs builder of a current Packer
 * against moto's emulated EC2 API. The stage (test/fixtures/packer-moto) builds with the stages'
 * own source block, packer/common/source.pkr.hcl, adding only `communicator = "none"` and the
 * emulator's endpoint and credential-check switches; `packer init` runs on the copied packer/
 * folder and finds the plugin installed.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeSecurityGroupsCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  type Image,
} from "@aws-sdk/client-ec2";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { providerCommand, startCli, toCliRun, waitFor } from "../fixtures/fake-packer-harness.ts";
import { useMoto } from "../helpers/moto.ts";
import { copyPackerFolder } from "../helpers/packer-copy.ts";
import { currentPacker, type CurrentPacker } from "../helpers/packer-current.ts";
import { tempDir } from "../helpers/temp-dir.ts";
import { parseStageStdout } from "../../src/runner/result.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const BUILD_REGION = "eu-west-1";
const COPY_REGION = "eu-central-1";
const STAGE = "moto";
const STACK = "dev";
const BUILDER_CIDR = "203.0.113.7/32";

function tagsOf(resource: { Tags?: Array<{ Key?: string; Value?: string }> }): Record<string, string> {
  return Object.fromEntries((resource.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
}

/** What a build may leave behind in a region: live instances of the run, Packer's temporary groups and key pairs. */
async function leftovers(ec2: EC2Client, inputsHash: string) {
  const { Reservations } = await ec2.send(
    new DescribeInstancesCommand({
      Filters: [
        { Name: "tag:jira-images:inputs-hash", Values: [inputsHash] },
        { Name: "instance-state-name", Values: ["pending", "running", "stopping", "stopped", "shutting-down"] },
      ],
    }),
  );
  const { SecurityGroups } = await ec2.send(new DescribeSecurityGroupsCommand({}));
  const { KeyPairs } = await ec2.send(new DescribeKeyPairsCommand({}));
  return {
    instances: (Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => `${i.InstanceId} (${i.State?.Name})`),
    securityGroups: (SecurityGroups ?? []).filter((g) => g.GroupName?.startsWith("packer_")).map((g) => g.GroupName!),
    keyPairs: (KeyPairs ?? []).filter((k) => k.KeyName?.startsWith("packer_")).map((k) => k.KeyName!),
  };
}

function logIn(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const log = readdirSync(dir).find((f) => f.endsWith(".log"));
  return log === undefined ? undefined : join(dir, log);
}

describe("stage runner with the real amazon-ebs builder against moto (emulated EC2)", function () {
  this.timeout(60_000);
  const moto = useMoto();
  let packer: CurrentPacker;
  let stageDir: string;
  let sourceAmi: string;
  let runs = 0;

  before(async function () {
    packer = currentPacker();
    const root = tempDir("packer-ec2-");
    copyPackerFolder(ROOT, root);
    stageDir = join(root, "packer", STAGE);
    mkdirSync(stageDir);
    copyFileSync(join(ROOT, "test/fixtures/packer-moto/moto.pkr.hcl"), join(stageDir, "moto.pkr.hcl"));
    symlinkSync("../common/source.pkr.hcl", join(stageDir, "common-source.pkr.hcl"));
    symlinkSync("../common/variables.pkr.hcl", join(stageDir, "common-variables.pkr.hcl"));

    const { Images } = await moto.ec2(BUILD_REGION).send(
      new DescribeImagesCommand({ Owners: ["amazon"], Filters: [{ Name: "root-device-type", Values: ["ebs"] }, { Name: "architecture", Values: ["x86_64"] }] }),
    );
    assert.ok(Images?.[0]?.ImageId, "moto lists no EBS-backed x86_64 image of owner amazon");
    sourceAmi = Images[0].ImageId;
  });

  /** The runner's arguments and environment for one build; each run has its own inputs hash and log folder. */
  function build(options: { holdSeconds?: number; timeoutSeconds?: number } = {}) {
    runs++;
    const inputsHash = `sha256:${String(runs).padStart(64, "0")}`;
    const logDir = join(tempDir("packer-ec2-logs-"), "logs");
    const args = [
      ["--stage", STAGE, "--template", stageDir, "--log-dir", logDir],
      ["--var", `stack=${STACK}`, "--var", `region=${BUILD_REGION}`, "--var", `ami_regions=["${COPY_REGION}"]`],
      ["--var", `source_ami=${sourceAmi}`, "--var", `ec2_endpoint=${moto.endpoint}`, "--var", `inputs_hash=${inputsHash}`],
      ["--var", `hold_seconds=${options.holdSeconds ?? 0}`],
      options.timeoutSeconds !== undefined ? ["--timeout", String(options.timeoutSeconds)] : [],
    ].flat();
    const env = packer.env({
      ...moto.env(),
      PACKER_BIN: packer.bin,
      PKR_VAR_ssh_source_cidrs: JSON.stringify([BUILDER_CIDR]),
      // The plugin's waiters poll every 2-15 s by default; moto answers at once.
      AWS_POLL_DELAY_SECONDS: "1",
    });
    return { args, env, inputsHash, logDir };
  }

  /** Waits until the build has its instance running and is provisioning: the middle of a build. */
  async function midBuild(inputsHash: string, logDir: string): Promise<void> {
    const deadline = Date.now() + 40_000;
    for (;;) {
      const log = logIn(logDir);
      if (log !== undefined && readFileSync(log, "utf8").includes("Running local shell script")) {
        const now = await leftovers(moto.ec2(BUILD_REGION), inputsHash);
        assert.equal(now.instances.filter((i) => i.endsWith("(running)")).length, 1, `mid-build, the build instance is not running: ${JSON.stringify(now)}`);
        assert.equal(now.securityGroups.length, 1, "mid-build, there is no temporary security group");
        assert.equal(now.keyPairs.length, 1, "mid-build, there is no temporary key pair");
        return;
      }
      if (Date.now() > deadline) throw new Error(`the build did not reach its provisioner within 40 s (log: ${log})`);
      await sleep(100);
    }
  }

  async function assertNothingLeft(inputsHash: string): Promise<void> {
    const ec2 = moto.ec2(BUILD_REGION);
    let last = await leftovers(ec2, inputsHash);
    const deadline = Date.now() + 30_000;
    while (last.instances.length + last.securityGroups.length + last.keyPairs.length > 0 && Date.now() < deadline) {
      await sleep(500);
      last = await leftovers(ec2, inputsHash);
    }
    assert.deepEqual(last, { instances: [], securityGroups: [], keyPairs: [] }, "the build left resources in the emulated EC2");
  }

  it("reports the AMI of every region, encrypted, private, IMDSv2-only, with the lineage tags; the build instance IMDSv2-only, reachable from the builder alone", async function () {
    const { args, env, inputsHash } = build();
    const run = toCliRun(await startCli(args, { env }));
    assert.equal(run.exitCode, 0, run.stderr);
    const result = parseStageStdout(STAGE, run.stdout);
    // One AMI per region; `region`/`amiId` is the first region of Packer's (sorted) artifact id,
    // which is why the program picks its region's AMI from `amis` by name.
    assert.deepEqual(Object.keys(result.amis).sort(), [COPY_REGION, BUILD_REGION].sort());
    assert.notEqual(result.amis[COPY_REGION], result.amis[BUILD_REGION]);
    assert.equal(result.amis[result.region], result.amiId);
    assert.match(result.packerVersion ?? "", /^1\.(1[1-9]|[2-9]\d)\./);

    const imageNames: Record<string, string> = {};
    const imageSnapshots: Record<string, string[]> = {};
    for (const [region, amiId] of Object.entries(result.amis)) {
      const ec2 = moto.ec2(region);
      const { Images } = await ec2.send(new DescribeImagesCommand({ ImageIds: [amiId] }));
      assert.equal(Images?.length, 1, `${amiId} is not in ${region}`);
      const image: Image = Images[0]!;
      assert.equal(image.Public, false, `${amiId} in ${region} is public`);
      const tags = tagsOf(image);
      assert.equal(tags["jira-images:stage"], STAGE);
      assert.equal(tags["jira-images:stack"], STACK);
      assert.equal(tags["jira-images:managed-by"], "packer");
      assert.equal(tags["jira-images:inputs-hash"], inputsHash);
      assert.equal(tags["jira-images:parent-ami"], sourceAmi, "the template's {{ .SourceAMI }} was not filled in");
      assert.equal(tags["jira-images:build-region"], BUILD_REGION);
      assert.equal(tags.Name, image.Name);
      assert.equal(tags["jira-images:run-id"], result.runId, "the AMI lacks the runner's run id");

      const snapshotIds = (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));
      assert.ok(snapshotIds.length > 0, `${amiId} in ${region} has no EBS snapshot`);
      imageNames[region] = image.Name!;
      imageSnapshots[region] = snapshotIds;
      const { Snapshots } = await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: snapshotIds }));
      for (const snapshot of Snapshots ?? []) {
        assert.equal(tagsOf(snapshot)["jira-images:inputs-hash"], inputsHash, `snapshot ${snapshot.SnapshotId} lacks the lineage tags`);
      }
    }

    // Encryption: moto 5.2.5 ignores CopyImage's Encrypted (its snapshots are never encrypted), so
    // what is checked is the request: with encrypt_boot every region's AMI is a copy asked to be encrypted.
    const copies = await moto.requests("CopyImage");
    for (const [region, amiId] of Object.entries(result.amis)) {
      const copy = copies.filter((c) => c.region === region && c.params.Name === imageNames[region]);
      assert.equal(copy.length, 1, `no CopyImage made ${amiId} in ${region}`);
      assert.equal(copy[0]!.params.Encrypted, "true", `${amiId} in ${region} was copied without Encrypted=true`);
    }
    // What moto accepts but does not keep (the instance's metadata options and volume encryption,
    // the image's ImdsSupport), checked in the requests Packer sent.
    const [launch, ...moreLaunches] = (await moto.requests("RunInstances")).filter((r) => Object.values(r.params).includes(inputsHash));
    assert.ok(launch !== undefined && moreLaunches.length === 0, "expected one RunInstances of this build");
    assert.equal(launch.params["MetadataOptions.HttpTokens"], "required", "the build instance accepts IMDSv1");
    assert.equal(launch.params["MetadataOptions.HttpPutResponseHopLimit"], "1");
    assert.equal(launch.params["BlockDeviceMapping.1.Ebs.Encrypted"], "true", "the launch volume is not encrypted");
    // Every temporary resource carries the run id and the stage (run_tags, run_volume_tags), so that sweep finds what a killed build leaves.
    assert.match(result.runId ?? "", /^\d{8}T\d{6}Z-[0-9a-f]{8}$/);
    const tagSpecs = (params: Record<string, string>) => {
      const specs: Record<string, Record<string, string>> = {};
      for (const [key, value] of Object.entries(params)) {
        const m = /^TagSpecification\.(\d+)\.Tag\.(\d+)\.(Key|Value)$/.exec(key);
        if (m) ((specs[m[1]!] ??= {})[`${m[2]}.${m[3]}`] = value);
      }
      return Object.entries(specs).map(([i, kv]) => ({
        type: params[`TagSpecification.${i}.ResourceType`],
        tags: Object.fromEntries(Object.keys(kv).filter((k) => k.endsWith(".Key")).map((k) => [kv[k]!, kv[k.replace(/Key$/, "Value")] ?? ""])),
      }));
    };
    const runTagged = (action: string, params: Record<string, string>, type: string) => {
      const spec = tagSpecs(params).find((t) => t.type === type);
      assert.equal(spec?.tags["jira-images:run-id"], result.runId, `${action}: the ${type} lacks the run id`);
      assert.equal(spec?.tags["jira-images:stage"], STAGE, `${action}: the ${type} lacks the stage`);
      assert.equal(spec?.tags["jira-images:stack"], STACK, `${action}: the ${type} lacks the stack`);
    };
    runTagged("RunInstances", launch.params, "instance");
    runTagged("RunInstances", launch.params, "volume");
    const ofRun = (r: { params: Record<string, string> }) => Object.values(r.params).includes(result.runId!);
    const [group] = (await moto.requests("CreateSecurityGroup")).filter(ofRun);
    assert.ok(group, "the temporary security group was created without the run id");
    runTagged("CreateSecurityGroup", group.params, "security-group");
    const [keyPair] = (await moto.requests("CreateKeyPair")).filter(ofRun);
    assert.ok(keyPair, "the temporary key pair was created without the run id");
    runTagged("CreateKeyPair", keyPair.params, "key-pair");
    const ingress = (await moto.requests("AuthorizeSecurityGroupIngress")).flatMap((r) =>
      Object.entries(r.params).filter(([key]) => /IpRanges\.\d+\.CidrIp$|Ipv6Ranges\.\d+\.CidrIpv6$/.test(key)).map(([, cidr]) => cidr),
    );
    assert.deepEqual([...new Set(ingress)], [BUILDER_CIDR], "the temporary security group is open beyond the builder's address");
    const imds = await moto.requests("ModifyImageAttribute");
    for (const [region, amiId] of Object.entries(result.amis)) {
      assert.ok(
        imds.some((r) => r.region === region && r.params.ImageId === amiId && r.params["ImdsSupport.Value"] === "v2.0"),
        `${amiId} in ${region} was not set to IMDSv2 only (imds_support)`,
      );
    }

    // The unencrypted intermediate image (made by CreateImage from the instance) and its snapshot
    // are gone: the suite's first build leaves exactly its AMIs. (moto's own catalogue images
    // come with snapshots too, so the snapshots are told apart by moto's CreateImage description.)
    for (const [region, amiId] of Object.entries(result.amis)) {
      const ec2 = moto.ec2(region);
      const { Images: own } = await ec2.send(new DescribeImagesCommand({ Owners: ["self"] }));
      assert.deepEqual((own ?? []).map((i) => i.ImageId), [amiId], `images left in ${region}`);
      const { Snapshots: snapshots } = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }));
      const fromInstances = (snapshots ?? []).filter((s) => s.Description?.startsWith("Created by CreateImage("));
      assert.deepEqual(fromInstances.map((s) => s.SnapshotId), [], `snapshots of the unencrypted image left in ${region}`);
      assert.ok(imageSnapshots[region]!.every((id) => (snapshots ?? []).some((s) => s.SnapshotId === id)));
    }
    await assertNothingLeft(inputsHash);
  });

  it("the runner's result line, as the deregister command gets it on rebuild, removes the build's AMIs and snapshots in every region", async function () {
    const { args, env } = build();
    const run = toCliRun(await startCli(args, { env }));
    assert.equal(run.exitCode, 0, run.stderr);
    const result = parseStageStdout(STAGE, run.stdout);
    const snapshots: Record<string, string[]> = {};
    for (const [region, amiId] of Object.entries(result.amis)) {
      const { Images } = await moto.ec2(region).send(new DescribeImagesCommand({ ImageIds: [amiId] }));
      snapshots[region] = (Images?.[0]?.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : []));
      assert.ok(snapshots[region].length > 0);
    }

    const deregister = await execa(process.execPath, ["--import", "tsx", join(ROOT, "src/runner/deregister-cli.ts"), "--stage", STAGE, "--stack", STACK], {
      cwd: ROOT,
      env: { ...moto.env(), PULUMI_COMMAND_STDOUT: run.stdout },
      reject: false,
    });
    assert.equal(deregister.exitCode, 0, String(deregister.stderr));
    for (const [region, amiId] of Object.entries(result.amis)) {
      const ec2 = moto.ec2(region);
      const { Images } = await ec2.send(new DescribeImagesCommand({ Owners: ["self"] }));
      assert.ok(!(Images ?? []).some((i) => i.ImageId === amiId), `${amiId} is still registered in ${region}`);
      const { Snapshots } = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"] }));
      const left = (Snapshots ?? []).filter((s) => snapshots[region]!.includes(s.SnapshotId ?? ""));
      assert.deepEqual(left.map((s) => s.SnapshotId), [], `snapshots of ${amiId} left in ${region}`);
    }
  });

  it("SIGKILL of the runner mid-build (what a cancelled `pulumi up` does): Packer still cleans up, nothing is left running", async function () {
    const { args, env, inputsHash, logDir } = build({ holdSeconds: 600 });
    const child = execa("/bin/sh", ["-c", providerCommand(args)], { cwd: ROOT, env, extendEnv: false, reject: false });
    await midBuild(inputsHash, logDir);
    child.kill("SIGKILL");
    assert.equal((await child).signal, "SIGKILL");
    await waitFor("Packer's clean cancel", () => readFileSync(logIn(logDir)!, "utf8").includes("Cleanly cancelled builds after being interrupted."), 30_000);
    assert.match(readFileSync(logIn(logDir)!, "utf8"), /runner \(pid \d+\) is gone; interrupting Packer/);
    await assertNothingLeft(inputsHash);
  });

  it("a timeout mid-build interrupts Packer, waits for its cleanup and fails with TIMEOUT; nothing is left running", async function () {
    // Long enough to reach the provisioner (a few seconds here), which then holds the instance.
    const { args, env, inputsHash, logDir } = build({ holdSeconds: 600, timeoutSeconds: 8 });
    const run = toCliRun(await startCli(args, { env }));
    assert.equal(run.exitCode, 124, run.stderr);
    assert.match(run.stderr, /TIMEOUT: timed out after 8 s; Packer cleaned up and reported its builds cancelled/);
    assert.match(readFileSync(logIn(logDir)!, "utf8"), /Running local shell script/, "the timeout did not fire mid-build");
    await assertNothingLeft(inputsHash);
  });
});
