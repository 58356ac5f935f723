/**
 * Secrets the runner knows (the environment's AWS secret key and session token, secret variables)
 * never reach its stderr, its errors or the log, whatever shape Packer prints them in and however
 * the reads cut them.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { CredentialScanner, knownSecretValues, Redactor } from "../src/runner/redact.ts";
import { type InProcessRun as Outcome, LOGS, runInProcess as run, makeTemplate, tempDir } from "./fixtures/fake-packer-harness.ts";

function logText(dir: string): string {
  const files = readdirSync(dir).filter((f) => f.endsWith(".log"));
  assert.equal(files.length, 1, `one log in ${dir}: ${files.join(", ")}`);
  return readFileSync(join(dir, files[0]!), "utf8");
}

// Made at run time, so that no credential-shaped string is committed anywhere.
const secretKey = randomBytes(30).toString("base64");
const sessionToken = randomBytes(300).toString("base64");
const dbPassword = `pa,ss-${randomBytes(8).toString("hex")}`;

describe("runner: secrets redacted by value", function () {
  this.timeout(40_000);
  const dir = tempDir("secrets-");
  const template = makeTemplate(dir, { name: "plain" });
  const outcomes: Record<string, Outcome> = {};
  const env = { AWS_SECRET_ACCESS_KEY: secretKey, AWS_SESSION_TOKEN: sessionToken, PKR_VAR_db_password: dbPassword };
  const packerComma = (text: string) => text.replaceAll(",", "%!(PACKER_COMMA)");

  before(async () => {
    // Packer's error records and ui errors holding the secrets bare, as an SDK error message would.
    const failing = join(dir, "failing.log");
    const error = `Error launching source instance: SignatureDoesNotMatch: key ${secretKey} token ${sessionToken}`;
    writeFileSync(
      failing,
      readFileSync(join(LOGS, "amazon-ebs-error.log"), "utf8")
        .replace("1732540805,,error-count,1\n", `1732540805,,ui,error,==> amazon-ebs.jira: ${error}\n1732540805,,error-count,1\n`)
        .replace(/^(\d+,amazon-ebs\.jira,error,)(.*)$/m, `$1${packerComma(error)} db ${packerComma(dbPassword)}`)
        .concat(`1732540806,,ui,message,    url: https://ec2.amazonaws.com/?X-Amz-Security-Token=${encodeURIComponent(sessionToken)}\n`),
    );
    // A successful build that printed the session token once, cut across two reads of the log.
    const split = join(dir, "split.log");
    writeFileSync(
      split,
      readFileSync(join(LOGS, "amazon-ebs-success.log"), "utf8").replace(
        /\n/,
        `\n1732540879,,ui,message,    amazon-ebs.jira: credentials refreshed: ${sessionToken} ok\n`,
      ),
    );
    const cases: Array<[string, Promise<Outcome>]> = [
      [
        "failing",
        run(["--stage", "jira", "--template", template, "--secret-var", "db_password", "--log-dir", join(dir, "failing-logs")], {
          ...env,
          FAKE_PACKER_LOG: failing,
          FAKE_PACKER_EXIT: "1",
        }),
      ],
      [
        "split",
        run(["--stage", "jira", "--template", template, "--log-dir", join(dir, "split-logs")], {
          ...env,
          FAKE_PACKER_LOG: split,
          FAKE_PACKER_SPLIT_AT: sessionToken,
        }),
      ],
      ["unset", run(["--stage", "jira", "--template", template, "--secret-var", "api_token"], {})],
      [
        "on-command-line",
        run(["--stage", "jira", "--template", template, "--secret-var", "db_password", "--var", `db_password=${dbPassword}`], env),
      ],
      ["short", run(["--stage", "jira", "--template", template, "--secret-var", "pin"], { PKR_VAR_pin: "1234" })],
    ];
    const settled = await Promise.all(cases.map(([, outcome]) => outcome));
    cases.forEach(([name], i) => (outcomes[name] = settled[i]!));
  });

  const leaks = (text: string) =>
    [secretKey, sessionToken, encodeURIComponent(sessionToken), dbPassword, packerComma(dbPassword)].filter((s) => text.includes(s));

  it("keeps the AWS secret key, the session token and a secret variable out of Packer's errors on stderr", () => {
    const o = outcomes["failing"]!;
    assert.ok(o.error, "the build failed");
    assert.match(o.error, /^PACKER_FAILED: /);
    assert.deepEqual(leaks(o.error), []);
    assert.deepEqual(leaks(o.stderr.join("\n")), []);
    assert.match(o.error, /SignatureDoesNotMatch: key \[REDACTED\] token \[REDACTED\]/, "the message stays readable");
  });

  it("redacts them, escaped or URL-encoded too, from the log of a failed build", () => {
    const text = logText(join(dir, "failing-logs"));
    assert.deepEqual(leaks(text), []);
    assert.match(text, /X-Amz-Security-Token=\[REDACTED\]/);
    assert.match(text, /db \[REDACTED\]/);
  });

  it("redacts a secret that reached the runner cut across two reads", () => {
    const o = outcomes["split"]!;
    assert.ok(o.result, o.error);
    const text = logText(join(dir, "split-logs"));
    assert.deepEqual(leaks(text), []);
    assert.match(text, /credentials refreshed: \[REDACTED\] ok/);
  });

  it("refuses a secret variable that is not in the environment, is on the command line, or is too short to redact", () => {
    assert.match(outcomes["unset"]!.error!, /^SECRET_VAR_INVALID: --secret-var api_token: PKR_VAR_api_token is not set/);
    const onLine = outcomes["on-command-line"]!.error!;
    assert.match(onLine, /^SECRET_VAR_INVALID: --secret-var db_password is also given as --var db_password=…/);
    assert.ok(!onLine.includes(dbPassword));
    assert.match(outcomes["short"]!.error!, /^SECRET_VAR_INVALID: --secret-var pin: .* shorter than 8 characters/);
  });
});

describe("runner: redaction units", () => {
  it("the scanner sees a known secret however the stream is cut into reads", () => {
    const redactor = new Redactor(knownSecretValues({ AWS_SESSION_TOKEN: sessionToken }, []));
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), fc.array(fc.nat(), { maxLength: 6 }), (before, after, cuts) => {
        const text = `${before.replaceAll("\n", " ")}${sessionToken}${after}`;
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const scanner = new CredentialScanner(redactor);
        let last = 0;
        for (const p of [...points, text.length]) {
          scanner.push(text.slice(last, p));
          last = p;
        }
        return scanner.seen;
      }),
    );
  });

  it("redacts a value inside a longer one whole, and ignores values too short to redact", () => {
    const values = knownSecretValues({ AWS_SECRET_ACCESS_KEY: secretKey, AWS_SESSION_TOKEN: "short" }, []);
    assert.ok(!values.includes("short"));
    assert.equal(new Redactor(values).redact(`a ${secretKey}x b`), "a [REDACTED]x b");
    assert.equal(new Redactor([]).redact("nothing secret here"), "nothing secret here");
  });
});
