/**
 * Images a run makes but cannot hand on (Packer failing after the AMI exists, a manifest or an
 * artifact that does not name one image) are named with how to remove them, and what a
 * provisioner leaves running is ended with the build.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseMachineReadable } from "../src/machine-readable.ts";
import { imagesLeftBehind, validAmiPairs } from "../src/runner/image.ts";
import { type InProcessRun as Outcome, LOGS, runInProcess as run, makeTemplate, readRecord, tempDir } from "./fixtures/fake-packer-harness.ts";

/** Machine-readable lines as Packer writes them (commas and newlines escaped). */
function machine(records: Array<[string, string, ...string[]]>): string {
  const escape = (t: string) => t.replaceAll(",", "%!(PACKER_COMMA)").replaceAll("\n", "\\n");
  return records.map(([target, type, ...data]) => `1732541000,${target},${type},${data.map(escape).join(",")}\n`).join("");
}

const ui = (kind: string, text: string): [string, string, ...string[]] => ["", "ui", kind, text];
const T = "amazon-ebs.jira";
const [A, B, C, TMP] = ["ami-0aaaaaaaaaaaaaaa1", "ami-0bbbbbbbbbbbbbbb2", "ami-0ccccccccccccccc3", "ami-0eeeeeeeeeeeeeee9"];

function artifact(index: number, id: string): Array<[string, string, ...string[]]> {
  return [
    [T, "artifact", String(index), "builder-id", "mitchellh.amazonebs"],
    [T, "artifact", String(index), "id", id],
    [T, "artifact", String(index), "end"],
  ];
}

const postProcessorFailed = machine([
  ui("error", `Build '${T}' errored after 6 minutes: 1 error(s) occurred:\n\n* Post-processor failed: exit status 1`),
  ["", "error-count", "1"],
  [T, "error", "1 error(s) occurred:\n\n* Post-processor failed: exit status 1"],
]);

describe("runner: images a failed run leaves behind", function () {
  this.timeout(40_000);
  const dir = tempDir("images-");
  const plain = makeTemplate(dir, { name: "plain" });
  const withManifest = makeTemplate(dir, { name: "with-manifest", manifest: true });
  const outcomes: Record<string, Outcome> = {};
  const log = (name: string, text: string) => {
    const path = join(dir, `${name}.log`);
    writeFileSync(path, text);
    return path;
  };
  const regions = ["--var", "region=eu-west-1", "--var", 'ami_regions=["us-east-1"]'];

  before(async () => {
    // The amazon-ebs build finished (artifact listed), then a post-processor failed.
    const afterArtifact = log(
      "after-artifact",
      readFileSync(join(LOGS, "amazon-ebs-multi-region.log"), "utf8") + postProcessorFailed,
    );
    // encrypt_boot: a temporary AMI, tagged copies, the temporary one removed, then a post-processor failed
    // after the manifest post-processor had written the copies' regions.
    const copies = log(
      "copies",
      machine([
        ui("message", `    ${T}: AMI: ${TMP}`),
        ui("say", `==> ${T}: Copying/Encrypting AMI (${TMP}) to other regions...`),
        ui("say", `==> ${T}: Adding tags to AMI (${A})...`),
        ui("say", `==> ${T}: Adding tags to AMI (${B})...`),
        ui("say", `==> ${T}: Deregistering the AMI and deleting unencrypted temporary AMIs and snapshots`),
      ]) + postProcessorFailed,
    );
    const manifest = join(dir, "copies.manifest.json");
    writeFileSync(
      manifest,
      JSON.stringify({
        builds: [{ name: "jira", builder_type: "amazon-ebs", artifact_id: `eu-west-1:${A},us-east-1:${B}`, packer_run_uuid: "r1" }],
        last_run_uuid: "r1",
      }),
    );
    // Tagging failed and Packer's cleanup deregistered the image: nothing is left.
    const cleanedUp = log(
      "cleaned-up",
      machine([
        ui("message", `    ${T}: AMI: ${A}`),
        ui("say", `==> ${T}: Adding tags to AMI (${A})...`),
        ui("error", `==> ${T}: Error adding tags to Resources: UnauthorizedOperation`),
        ui("say", `==> ${T}: Deregistering the AMI and deleting associated snapshots because of cancellation, or error...`),
        ui("say", `==> ${T}: Deregistered AMI id: ${A}`),
        ["", "error-count", "1"],
        [T, "error", "Error adding tags to Resources: UnauthorizedOperation"],
      ]),
    );
    // The same, but the cleanup's own deregistration failed: the image stays, in the build region.
    const cleanupFailed = log(
      "cleanup-failed",
      machine([
        ui("message", `    ${T}: AMI: ${A}`),
        ui("error", `==> ${T}: Error adding tags to Resources: UnauthorizedOperation`),
        ui("say", `==> ${T}: Deregistering the AMI and deleting associated snapshots because of cancellation, or error...`),
        ui("error", `==> ${T}: Error deregistering existing AMI: UnauthorizedOperation`),
        ["", "error-count", "1"],
        [T, "error", "Error adding tags to Resources: UnauthorizedOperation"],
      ]),
    );
    const mixed = log("mixed", machine([...artifact(0, `eu-west-1:${A},eu-west-1x:${B},us-east-1:not-an-ami`)]));
    const twoAmis = log("two-amis", machine([...artifact(0, `eu-west-1:${A}`), ...artifact(1, `eu-west-1:${B}`)]));
    const severalInManifest = join(dir, "several.manifest.json");
    writeFileSync(
      severalInManifest,
      JSON.stringify({
        builds: [
          { name: "jira", builder_type: "amazon-ebs", artifact_id: `eu-west-1:${A},us-east-1:${C}`, packer_run_uuid: "r2" },
          { name: "jira", builder_type: "amazon-ebs", artifact_id: `eu-west-1:${B}`, packer_run_uuid: "r2" },
        ],
        last_run_uuid: "r2",
      }),
    );
    const one = log("one", machine(artifact(0, `eu-west-1:${A},us-east-1:${C}`)));
    const cases: Array<[string, Promise<Outcome>]> = [
      ["after-artifact", run(["--stage", "jira", "--template", plain, "--log-dir", join(dir, "l1")], { FAKE_PACKER_LOG: afterArtifact, FAKE_PACKER_EXIT: "1" })],
      [
        "copies",
        run(["--stage", "jira", "--template", withManifest, ...regions, "--log-dir", join(dir, "l2")], {
          FAKE_PACKER_LOG: copies,
          FAKE_PACKER_EXIT: "1",
          FAKE_PACKER_MANIFEST: manifest,
        }),
      ],
      [
        "copies-no-manifest",
        run(["--stage", "jira", "--template", plain, ...regions, "--log-dir", join(dir, "l3")], { FAKE_PACKER_LOG: copies, FAKE_PACKER_EXIT: "1" }),
      ],
      ["cleaned-up", run(["--stage", "jira", "--template", plain, ...regions, "--log-dir", join(dir, "l4")], { FAKE_PACKER_LOG: cleanedUp, FAKE_PACKER_EXIT: "1" })],
      [
        "cleanup-failed",
        run(["--stage", "jira", "--template", plain, ...regions, "--log-dir", join(dir, "l5")], { FAKE_PACKER_LOG: cleanupFailed, FAKE_PACKER_EXIT: "1" }),
      ],
      ["mixed", run(["--stage", "jira", "--template", plain, "--log-dir", join(dir, "l6")], { FAKE_PACKER_LOG: mixed })],
      ["two-amis", run(["--stage", "jira", "--template", plain, "--log-dir", join(dir, "l7")], { FAKE_PACKER_LOG: twoAmis })],
      [
        "several-in-manifest",
        run(["--stage", "jira", "--template", withManifest, "--log-dir", join(dir, "l8")], { FAKE_PACKER_LOG: one, FAKE_PACKER_MANIFEST: severalInManifest }),
      ],
    ];
    const settled = await Promise.all(cases.map(([, outcome]) => outcome));
    cases.forEach(([name], i) => (outcomes[name] = settled[i]!));
  });

  it("Packer failing after its artifact exists: PACKER_FAILED_AFTER_IMAGE names every region:ami and how to remove each, exit 1", () => {
    const o = outcomes["after-artifact"]!;
    assert.equal(o.exitCode, 1);
    assert.match(o.error!, /^PACKER_FAILED_AFTER_IMAGE: packer build exited with status 1 after creating images that no state records/);
    assert.match(o.error!, /packer: .*Post-processor failed/);
    assert.match(
      o.error!,
      /^orphaned images: ap-northeast-1:ami-0aaaaaaaaaaaaaaa1, eu-west-1:ami-0bbbbbbbbbbbbbbb2, us-east-1:ami-0ccccccccccccccc3$/m,
    );
    for (const [region, ami] of [["ap-northeast-1", A], ["eu-west-1", B], ["us-east-1", C]]) {
      assert.ok(o.error!.includes(`remove: aws ec2 deregister-image --region ${region} --image-id ${ami} --delete-associated-snapshots`), o.error);
    }
    assert.match(o.error!, /or keep one: /);
  });

  it("names tagged copies with the manifest's regions, and not the temporary image Packer removed", () => {
    const o = outcomes["copies"]!;
    assert.match(o.error!, /^PACKER_FAILED_AFTER_IMAGE: /);
    assert.match(o.error!, new RegExp(`^orphaned images: eu-west-1:${A}, us-east-1:${B}$`, "m"));
    assert.ok(!o.error!.includes(TMP), o.error);
  });

  it("without a manifest, names the copies with the regions they can be in", () => {
    const o = outcomes["copies-no-manifest"]!;
    assert.match(o.error!, new RegExp(`^orphaned images: ${A} \\(region not in the log; one of eu-west-1, us-east-1\\), ${B} `, "m"));
    assert.ok(o.error!.includes(`remove: aws ec2 deregister-image --region <region> --image-id ${A}`));
  });

  it("an image Packer's cleanup deregistered is not reported; one whose deregistration failed is, in the build region", () => {
    assert.match(outcomes["cleaned-up"]!.error!, /^PACKER_FAILED: /);
    assert.ok(!outcomes["cleaned-up"]!.error!.includes("orphaned"), outcomes["cleaned-up"]!.error);
    const failed = outcomes["cleanup-failed"]!.error!;
    assert.match(failed, /^PACKER_FAILED_AFTER_IMAGE: /);
    assert.match(failed, new RegExp(`^orphaned images: eu-west-1:${A}$`, "m"));
  });

  it("an artifact id mixing valid and invalid pairs is no stage image, and its valid pair is named as left behind", () => {
    const o = outcomes["mixed"]!;
    assert.match(o.error!, /^NO_AMI: packer build exited 0 but none of its artifacts is an AMI/);
    assert.match(o.error!, new RegExp(`^orphaned images: eu-west-1:${A}$`, "m"));
  });

  it("one build reporting two different AMIs fails with MULTIPLE_IMAGES and names both as left behind", () => {
    const o = outcomes["two-amis"]!;
    assert.match(o.error!, new RegExp(`^MULTIPLE_IMAGES: packer build created 2 different images.*${A}.*${B}`));
    assert.match(o.error!, new RegExp(`^orphaned images: eu-west-1:${A}, eu-west-1:${B}$`, "m"));
  });

  it("a manifest run listing several images fails with MANIFEST_MISMATCH and names every AMI it lists", () => {
    const o = outcomes["several-in-manifest"]!;
    assert.match(o.error!, /^MANIFEST_MISMATCH: the manifest's run r2 lists .* and /);
    assert.match(o.error!, new RegExp(`^orphaned images: eu-west-1:${A}, us-east-1:${C}, eu-west-1:${B}$`, "m"));
  });
});

describe("runner: pure pieces of the left-behind report", () => {
  it("keeps the valid pairs of an artifact id and drops the rest", () => {
    assert.deepEqual(validAmiPairs(`eu-west-1:${A},nonsense,us-east-1:ami-XYZ,us-east-1:${C}`), [
      { region: "eu-west-1", amiId: A },
      { region: "us-east-1", amiId: C },
    ]);
  });

  it("reads the AMIs out of the ui lines of Packer 1.6.6's escaped listing", () => {
    const stream = parseMachineReadable(
      machine([ui("say", `--> ${T}: AMIs were created:\neu-west-1: ${A}\nus-east-1: ${C}\n`), ui("message", `    ${T}: Found Image ID: ${B}`)]),
    );
    assert.deepEqual(imagesLeftBehind(stream), [
      { amiId: A, region: "eu-west-1" },
      { amiId: C, region: "us-east-1" },
    ]);
  });
});

describe("runner: what a provisioner leaves running", function () {
  this.timeout(20_000);

  it("a background process left in Packer's process group is ended when Packer exits", async () => {
    const dir = tempDir("left-child-");
    const record = join(dir, "record");
    const o = await run(["--stage", "jira", "--template", makeTemplate(dir), "--log-dir", join(dir, "logs")], {
      FAKE_PACKER_LEAVE_CHILD: "1",
      FAKE_PACKER_RECORD: record,
    });
    assert.ok(o.result, o.error);
    const pid = readRecord(record).find((e) => e.event === "left-child")!["pid"] as number;
    const running = () => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
        return !/^\d+ \(.*\) [ZX] /.test(stat);
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 20 && running(); i++) await sleep(50);
    const survived = running();
    // A failing run must not leave it behind either.
    if (survived) process.kill(pid, "SIGKILL");
    assert.equal(survived, false, `pid ${pid} (sleep 300) still ran after the build`);
  });
});
