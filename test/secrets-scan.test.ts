import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Everything that goes into an image build: templates, var files, the workspace, the fixtures. */
const SCANNED = ["packer", ".gitattributes", "test/fixtures/packer-smoke"];

interface Finding {
  line: number;
  rule: string;
}

const RULES: Array<{ rule: string; pattern: RegExp }> = [
  { rule: "AWS access key ID", pattern: /\b(AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b/ },
  // The seed's anti-pattern: credentials as template variables or builder settings.
  { rule: "access_key/secret_key setting", pattern: /\b(access_key|secret_key|aws_access_key_id|aws_secret_access_key|aws_session_token|session_token)\b/i },
  { rule: "AWS credential environment variable", pattern: /\bAWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)\b/ },
  { rule: "40-character secret next to a secret-like name", pattern: /(secret|token|credential)[^\n]{0,40}["'=:\s][A-Za-z0-9/+]{40}\b/i },
  { rule: "private key", pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----/ },
  { rule: "password value", pattern: /\bpassword\b["'\]\s]*(=>|=|:)\s*["'](?!@@)[^"'\s]{4,}["']/i },
  { rule: "password in XML", pattern: /<password>(?!@@)[^<]+<\/password>/i },
];

/** Pure: the credential-looking lines of one file's text. */
function findCredentials(text: string): Finding[] {
  const findings: Finding[] = [];
  text.split("\n").forEach((content, index) => {
    for (const { rule, pattern } of RULES) {
      if (pattern.test(content)) findings.push({ line: index + 1, rule });
    }
  });
  return findings;
}

async function filesUnder(path: string): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOTDIR") return null;
    throw error;
  });
  if (entries === null) return [path];
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? filesUnder(join(path, e.name)) : Promise.resolve([join(path, e.name)]))),
  );
  return nested.flat().sort();
}

describe("secrets scan of templates, var files and the provisioning workspace", function () {
  it("recognises the credentials it is meant to catch", function () {
    const planted = [
      'variable "access_key" {}',
      'secret_key = "x"',
      '"aws_secret_access_key": "{{user `aws_secret_key`}}"',
      "export AWS_SECRET_ACCESS_KEY=abc",
      "key_id = AKIAIOSFODNN7EXAMPLE",
      `token = "${"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".slice(0, 40)}"`,
      "-----BEGIN RSA PRIVATE KEY-----",
      "default['jira']['db']['password'] = 'hunter22'",
      "<password>hunter22</password>",
      "password: 'hunter22'",
    ];
    for (const line of planted) assert.ok(findCredentials(line).length > 0, `not caught: ${line}`);
  });

  it("leaves secret names and placeholders alone", function () {
    const harmless = [
      "default['jira']['db']['password_name'] = '/jira-images/jira/db-password'",
      "<password>@@JIRA_DB_PASSWORD@@</password>",
      'description = "CIDRs allowed to reach the build instance"',
      'chef_client_rpm_sha256 = "78bc31f3a30605594b0f0eaf2523e94dc3525325bb04f5e3687d6cd7ee93b78e"',
    ];
    for (const line of harmless) assert.deepEqual(findCredentials(line), [], line);
  });

  it("finds no AWS credential, secret_key or baked-in password in any file", async function () {
    const files = (await Promise.all(SCANNED.map((p) => filesUnder(join(root, p))))).flat();
    assert.ok(files.length >= 25, `scanned only ${files.length} files`);
    const problems: string[] = [];
    for (const file of files) {
      const text = await readFile(file, "utf8");
      for (const finding of findCredentials(text)) {
        problems.push(`${relative(root, file)}:${finding.line}: ${finding.rule}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
