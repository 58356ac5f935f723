/**
 * The stage runner and the image tests' result line (packer/common/image-tests/run.sh prints it as
 * the stage's last provisioner): in-process runs against the stand-in packer.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOGS, runInProcess as run, makeTemplate, tempDir } from "./fixtures/fake-packer-harness.ts";
import { parseMachineReadable } from "../src/machine-readable.ts";

const SUCCESS = readFileSync(join(LOGS, "amazon-ebs-success.log"), "utf8");
const STOPPING = "1732540924,,ui,say,==> amazon-ebs.jira: Stopping the source instance...\n";

/** The success log with `lines` printed by the last provisioner, before the instance is stopped. */
function successWith(lines: string): string {
  assert.ok(SUCCESS.includes(STOPPING));
  return SUCCESS.replace(STOPPING, `${lines}${STOPPING}`);
}

/** A jira build whose image tests failed: the provisioner's output, then Packer's cleanup and error. */
function failedTestsLog(): string {
  const provisioning = SUCCESS.slice(0, SUCCESS.indexOf(STOPPING));
  return (
    provisioning +
    "1732540920,,ui,message,    amazon-ebs.jira: image-tests: ok: java: java at /usr/lib/jvm/java-17-amazon-corretto/bin/java\n" +
    "1732540920,,ui,error,    amazon-ebs.jira: image-tests: FAILED no secrets on disk: secrets on the image: /root/.aws/credentials\n" +
    "1732540920,,ui,error,    amazon-ebs.jira: image-tests: error: 1 of 18 checks failed (no secrets on disk); the image is not made\n" +
    "1732540920,,ui,message,    amazon-ebs.jira: image-tests: stage=jira passed=17 failed=1\n" +
    "1732540921,,ui,error,==> amazon-ebs.jira: Script exited with non-zero exit status: 1. Allowed exit codes are: [0]\n" +
    "1732540921,,ui,say,==> amazon-ebs.jira: Terminating the source AWS instance...\n" +
    "1732540950,,ui,say,==> amazon-ebs.jira: Deleting temporary security group...\n" +
    "1732540951,,ui,say,==> amazon-ebs.jira: Deleting temporary keypair...\n" +
    "1732540951,,ui,error,Build 'amazon-ebs.jira' errored after 2 minutes 30 seconds: Script exited with non-zero exit status: 1. Allowed exit codes are: [0]\n" +
    "1732540951,,error-count,1\n" +
    "1732540951,amazon-ebs.jira,error,Script exited with non-zero exit status: 1. Allowed exit codes are: [0]\n" +
    "1732540951,,ui,say,\\n==> Builds finished but no artifacts were created.\n"
  );
}

describe("stage runner: the image tests' result line", function () {
  this.timeout(40_000);
  const dir = tempDir();
  const template = makeTemplate(dir, { name: "plain" });
  const logs = (name: string) => ["--log-dir", join(dir, "logs", name)];
  const jira = (name: string, count = "18") => ["--stage", "jira", "--template", template, "--var", "stage=jira", "--var", `image_tests_count=${count}`, ...logs(name)];
  const log = (name: string, text: string) => {
    const file = join(dir, `${name}.log`);
    writeFileSync(file, text);
    return file;
  };

  it("the parser keeps the last result line a provisioner printed, as Packer prefixes it", () => {
    const stream = parseMachineReadable(successWith("1732540920,,ui,message,    amazon-ebs.jira: image-tests: stage=jira passed=18 failed=0\n"));
    assert.deepEqual(stream.imageTests, { stage: "jira", passed: 18, failed: 0 });
    assert.equal(parseMachineReadable(SUCCESS).imageTests, undefined);
  });

  it("reports tests { passed: true, count } when every expected check passed", async () => {
    const o = await run(jira("passed"));
    assert.ok(o.result, o.error);
    assert.deepEqual(o.result.tests, { passed: true, count: 18 });
  });

  it("reports no tests for a stage run without image_tests_count", async () => {
    const o = await run(["--stage", "jira", "--template", template, "--var", "stage=jira", ...logs("untested")]);
    assert.ok(o.result, o.error);
    assert.equal("tests" in o.result, false);
  });

  it("does not report a build whose output lacks the result line: IMAGE_TESTS_UNPROVEN, naming the image left behind", async () => {
    const o = await run(jira("omitted"), { FAKE_PACKER_IMAGE_TESTS: "omit" });
    assert.equal(o.result, undefined);
    assert.equal(o.exitCode, 1);
    assert.match(o.error!, /^IMAGE_TESTS_UNPROVEN: packer build made amazon-ebs\.jira -> us-east-1:ami-[0-9a-f]{17}, but its output has no image tests result line \(image-tests: stage=jira passed=18 failed=0\); the image is not used/);
    assert.match(o.error!, /ami-[0-9a-f]{17}/);
  });

  it("does not report a build whose result line shows fewer checks than the stage holds, or another stage", async () => {
    const fewer = await run(jira("fewer"), { FAKE_PACKER_LOG: log("fewer", successWith("1732540920,,ui,message,    amazon-ebs.jira: image-tests: stage=jira passed=17 failed=0\n")) });
    assert.match(fewer.error!, /^IMAGE_TESTS_UNPROVEN: .*its image tests report passed=17 failed=0, not all 18 checks passed/);
    const other = await run(jira("other"), { FAKE_PACKER_LOG: log("other", successWith("1732540920,,ui,message,    amazon-ebs.jira: image-tests: stage=base passed=18 failed=0\n")) });
    assert.match(other.error!, /^IMAGE_TESTS_UNPROVEN: .*its image tests result line is for stage base/);
  });

  it("says a failed build failed its image tests, with the failed checks Packer relayed", async () => {
    const o = await run(jira("failed"), { FAKE_PACKER_LOG: log("failed", failedTestsLog()), FAKE_PACKER_EXIT: "1" });
    assert.equal(o.exitCode, 1);
    assert.match(o.error!, /^IMAGE_TESTS_FAILED: 1 of 18 image tests failed on the build instance, so no AMI was made/);
    assert.match(o.error!, /^packer: +amazon-ebs\.jira: image-tests: FAILED no secrets on disk: secrets on the image: \/root\/\.aws\/credentials$/m);
  });
});
