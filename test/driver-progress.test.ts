import assert from "node:assert/strict";
import type { EngineEvent } from "@pulumi/pulumi/automation/index.js";
import {
  changedTriggerNames,
  findLogPath,
  formatDuration,
  stageResultOf,
  ProgressTracker,
  renderSummary,
  stageRunnerLines,
} from "../src/driver/progress.ts";

const URN = "urn:pulumi:dev::jira-images::jira-images:pipeline:ImagePipeline$jira-images:pipeline:ImageStage$command:local:Command::jira-build";

describe("driver progress (engine events -> stage lines)", () => {
  it("names the triggers that changed, for string and object triggers, added and removed ones", () => {
    assert.deepEqual(
      changedTriggerNames(["template=sha256:a", "chef=sha256:c", "parentAmi=ami-1"], ["template=sha256:b", "chef=sha256:c", "parentAmi=ami-1"]),
      ["template"],
    );
    assert.deepEqual(
      changedTriggerNames([{ template: "sha256:a", vars: "sha256:v" }], [{ template: "sha256:a", vars: "sha256:w", installer: "sha256:i" }]),
      ["vars", "installer"],
    );
    assert.deepEqual(changedTriggerNames(["x=1", "gone=2"], ["x=1"]), ["gone"]);
    assert.deepEqual(changedTriggerNames(["unnamed-1"], ["unnamed-2"]), ["triggers[0]"]);
  });

  it("finds the Packer log path in runner output and keeps only the runner's own lines", () => {
    const text =
      'error: exit status 1: running "exec node --import tsx src/runner/cli.ts --stage base":\n' +
      "stage-runner: [base] amazon-ebs.base: Error launching source instance: UnauthorizedOperation\n" +
      "stage-runner: [base] log: /work/p/.packer-logs/base/20250101T000000Z.log.";
    assert.equal(findLogPath(text), "/work/p/.packer-logs/base/20250101T000000Z.log");
    assert.equal(findLogPath("stage-runner: [x] see log file: /tmp/logs/x.log"), "/tmp/logs/x.log");
    assert.equal(findLogPath("nothing here"), undefined);
    assert.deepEqual(stageRunnerLines(text), [
      "stage-runner: [base] amazon-ebs.base: Error launching source instance: UnauthorizedOperation",
      "stage-runner: [base] log: /work/p/.packer-logs/base/20250101T000000Z.log.",
    ]);
  });

  it("reads the runner's JSON line from stdout and ignores anything else", () => {
    const line = JSON.stringify({ stage: "jira", amiId: "ami-0123456789abcdef0", region: "eu-west-1", amis: { "eu-west-1": "ami-0123456789abcdef0" }, logFile: ".packer-logs/jira/a.log" });
    assert.equal(stageResultOf(`${line}\n`)?.amiId, "ami-0123456789abcdef0");
    assert.equal(stageResultOf("[secret]"), undefined);
    assert.equal(stageResultOf(JSON.stringify({ stage: "jira", amiId: "not-an-ami" })), undefined);
  });

  it("formats durations as a person reads them", () => {
    assert.equal(formatDuration(42_000), "42s");
    assert.equal(formatDuration(432_000), "7m12s");
    assert.equal(formatDuration(3_720_000), "1h02m");
  });

  it("reports a build's start, heartbeat and interruption in the summary", () => {
    let clock = 0;
    const tracker = new ProgressTracker("up", () => clock);
    const pre: EngineEvent = {
      sequence: 1,
      timestamp: 0,
      resourcePreEvent: {
        metadata: {
          op: "create",
          urn: URN,
          type: "command:local:Command",
          provider: "",
          new: { type: "command:local:Command", urn: URN, id: "", parent: "", inputs: { triggers: ["template=sha256:a"] }, outputs: {}, provider: "" },
        },
      },
    };
    assert.deepEqual(tracker.handle(pre), ["[jira] Packer build started (new image)"]);
    clock = 95_000;
    assert.deepEqual(tracker.tick(), ["[jira] Packer running, 1m35s"]);
    assert.match(renderSummary(tracker.rows()), /^jira\s+interrupted\s+$/m);
  });
});
