import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./helpers/temp-dir.ts";
import { checkUserDataBudget, renderUserData, userDataWithinBudget } from "../src/user-data.ts";

describe("user data", () => {
  const settings = { hostname: "jira-dev-1", environment: "dev", jiraBaseUrl: "https://jira-dev.example.com" };

  it("holds only the launch settings, well under the default 1 KB budget", () => {
    const userData = renderUserData(settings);
    assert.match(userData, /^#!\/bin\/sh\n/);
    assert.match(userData, /hostnamectl set-hostname jira-dev-1\n/);
    assert.match(userData, /\nJIRA_ENVIRONMENT=dev\nJIRA_BASE_URL=https:\/\/jira-dev\.example\.com\nEOF\n$/);
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
    assert.throws(() => renderUserData({ ...settings, environment: "Dev" }), /USER_DATA_INVALID: environment "Dev"/);
  });
});
