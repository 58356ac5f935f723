import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./helpers/temp-dir.ts";
import { LAUNCH_ENV_FILE, checkUserDataBudget, longestEfsDnsName, renderUserData, userDataWithinBudget } from "../src/user-data.ts";

/**
 * Runs rendered user data with /bin/sh as cloud-init would, with /etc/jira-images redirected to a
 * temporary folder and a stand-in hostnamectl, and returns that folder and launch.env read the
 * way the image reads it: one KEY=value per line, the value verbatim after the first `=`.
 */
function runUserData(userData: string, dir: string): Map<string, string> {
  const etc = join(dir, "etc-jira-images");
  const bin = join(dir, "bin");
  execFileSync("mkdir", ["-p", bin]);
  writeFileSync(join(bin, "hostnamectl"), "#!/bin/sh\nexit 0\n");
  chmodSync(join(bin, "hostnamectl"), 0o755);
  const script = join(dir, "user-data.sh");
  writeFileSync(script, userData.replaceAll("/etc/jira-images", etc));
  execFileSync("sh", [script], { cwd: dir, env: { PATH: `${bin}:${process.env.PATH}` }, stdio: "pipe" });
  const text = readFileSync(join(etc, "launch.env"), "utf8");
  return new Map(text.trimEnd().split("\n").map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
}

describe("user data", () => {
  const settings = { hostname: "jira-dev-1", environment: "dev", jiraBaseUrl: "https://jira-dev.example.com" };

  it("holds only the launch settings, well under the default 1 KB budget", () => {
    const userData = renderUserData(settings);
    assert.match(userData, /^#!\/bin\/sh\n/);
    assert.match(userData, /hostnamectl set-hostname jira-dev-1\n/);
    assert.match(userData, /<<'JIRA_IMAGES_LAUNCH_ENV'\nJIRA_ENVIRONMENT=dev\nJIRA_BASE_URL=https:\/\/jira-dev\.example\.com\nJIRA_IMAGES_LAUNCH_ENV\n$/);
    assert.equal(LAUNCH_ENV_FILE, "/etc/jira-images/launch.env");
    assert.ok(Buffer.byteLength(userData) < 400, `${Buffer.byteLength(userData)} bytes`);
  });

  it("leaves the base URL out when it is not configured", () => {
    assert.doesNotMatch(renderUserData({ ...settings, jiraBaseUrl: "" }), /JIRA_BASE_URL/);
  });

  it("is a valid POSIX shell script (shellcheck)", () => {
    const file = join(tempDir("user-data-"), "user-data.sh");
    writeFileSync(file, renderUserData(settings));
    try {
      execFileSync("shellcheck", ["--shell=sh", file], { stdio: "pipe" });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stdout?: Buffer };
      if (e.code === "ENOENT") assert.fail("shellcheck is missing: apt-get install -y shellcheck");
      assert.fail(`shellcheck found problems:\n${e.stdout?.toString()}`);
    }
  });

  it("is the same for the same settings (no needless instance replacement)", () => {
    assert.equal(renderUserData(settings), renderUserData({ ...settings }));
  });

  it("fails over budget with the size, the budget and the fix", () => {
    assert.throws(
      () => userDataWithinBudget(settings, 100),
      /^JiraImagesError: USER_DATA_OVER_BUDGET: user data of jira-dev-1 is \d+ bytes, over its budget of 100 bytes \(jira-images:userDataBudgetBytes; AWS allows at most 16384\)\. Bake the extra settings into the image/,
    );
  });

  it("never allows more than AWS's 16 KB, whatever the budget", () => {
    assert.throws(() => checkUserDataBudget("x".repeat(16 * 1024 + 1), 100_000, "big"), /over its budget of 16384 bytes/);
    assert.equal(checkUserDataBudget("x".repeat(16 * 1024), 100_000, "max"), 16384);
  });

  it("rejects values that would break the script", () => {
    assert.throws(() => renderUserData({ ...settings, hostname: "jira_dev;reboot" }), /USER_DATA_INVALID: hostname "jira_dev;reboot"/);
    assert.throws(() => renderUserData({ ...settings, jiraBaseUrl: "https://x/$(id)" }), /USER_DATA_INVALID: Jira base URL/);
    assert.throws(() => renderUserData({ ...settings, jiraBaseUrl: "https://x/\nJIRA_CLUSTER=true" }), /USER_DATA_INVALID: Jira base URL/);
    assert.throws(() => renderUserData({ ...settings, jiraBaseUrl: "https://admin:s3cret@x/" }), /USER_DATA_INVALID: Jira base URL/);
    assert.throws(() => renderUserData({ ...settings, sharedHomeEfs: "fs-1.efs;reboot" }), /USER_DATA_INVALID: shared home/);
    assert.throws(() => renderUserData({ ...settings, environment: "Dev" }), /USER_DATA_INVALID: environment "Dev"/);
  });

  it("writes a base URL with shell syntax as data: the injection does not run, the query survives whole", () => {
    const dir = tempDir("user-data-run-");
    const marker = join(dir, "pwned");
    const injected = `https://jira.example.com/;touch>${marker}`;
    const env = runUserData(renderUserData({ ...settings, jiraBaseUrl: injected }), dir);
    assert.equal(existsSync(marker), false, "the base URL ran as a command");
    assert.equal(env.get("JIRA_BASE_URL"), injected);
    const query = "https://jira.example.com/secure/Dashboard.jspa?a=1&b=2|c;d<e>(f)";
    assert.equal(runUserData(renderUserData({ ...settings, jiraBaseUrl: query }), tempDir("user-data-run-")).get("JIRA_BASE_URL"), query);
  });

  it("writes the contract's keys for a cluster node: environment, base URL, shared home, cluster", () => {
    const efs = "fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com";
    const env = runUserData(renderUserData({ ...settings, sharedHomeEfs: efs }), tempDir("user-data-run-"));
    assert.deepEqual([...env], [
      ["JIRA_ENVIRONMENT", "dev"],
      ["JIRA_BASE_URL", "https://jira-dev.example.com"],
      ["JIRA_SHARED_HOME_EFS", efs],
      ["JIRA_CLUSTER", "true"],
    ]);
    assert.ok(longestEfsDnsName("ap-southeast-1").length >= efs.length);
  });

  it("counts the budget in UTF-8 bytes, not characters", () => {
    const url = `https://jira.example.com/${"ü".repeat(300)}`;
    const userData = renderUserData({ ...settings, jiraBaseUrl: url });
    assert.ok(userData.length <= 700, `${userData.length} characters`);
    assert.equal(Buffer.byteLength(userData), userData.length + 300);
    assert.throws(() => userDataWithinBudget({ ...settings, jiraBaseUrl: url }, 700), /USER_DATA_OVER_BUDGET: user data of jira-dev-1 is \d+ bytes, over its budget of 700 bytes/);
    assert.equal(checkUserDataBudget("é".repeat(512), 1024, "two-byte"), 1024);
    assert.throws(() => checkUserDataBudget("é".repeat(513), 1024, "two-byte"), /is 1026 bytes, over its budget of 1024 bytes/);
  });

  it("is read back whole by the image's own launch.env reader (packer/chef/.../launch-env.sh)", () => {
    const dir = tempDir("user-data-run-");
    const url = "https://jira.example.com/;touch>/tmp/x?a=1&b=2";
    runUserData(renderUserData({ ...settings, jiraBaseUrl: url, sharedHomeEfs: "fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com" }), dir);
    const reader = new URL("../packer/chef/cookbooks/jira/files/launch-env.sh", import.meta.url).pathname;
    const read = (key: string) =>
      execFileSync("bash", ["-c", `source "$1" && launch_env_get "$2" "$3"`, "read", reader, join(dir, "etc-jira-images", "launch.env"), key], { encoding: "utf8" }).trimEnd();
    assert.equal(read("JIRA_BASE_URL"), url);
    assert.equal(read("JIRA_CLUSTER"), "true");
    assert.equal(read("JIRA_SHARED_HOME_EFS"), "fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com");
  });
});
