import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const readme = readFileSync(join(root, "README.md"), "utf8");

/** The text of a `## ` section of the README, up to the next `## ` heading. */
function section(heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `README has a "## ${heading}" section`);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

function sourceFiles(): string[] {
  const files: string[] = [join(root, "index.ts")];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|sh)$/.test(name)) files.push(path);
    }
  };
  walk(join(root, "src"));
  walk(join(root, "stages"));
  return files;
}

/**
 * Error codes as the sources raise them: the first argument of `new JiraImagesError(...)` or of a
 * `fail(...)` helper, messages written as `"<CODE>: ..."` (the delete step, the driver), and
 * problems reported as `code: "<CODE>"` (the program's preflight).
 */
const RAISED = [
  /(?:JiraImagesError|\bfail)\(\s*["'`]([A-Za-z][\w-]*)["'`]/g,
  /["'`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*|[a-z]+(?:-[a-z]+)+): /g,
  /\bcode: ["'`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)["'`]/g,
];
/** Message prefixes that are not codes. */
const NOT_CODES = new Set(["stage-runner", "image-tests"]);

function raisedCodes(files: readonly string[]): Map<string, string[]> {
  const codes = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const pattern of RAISED) {
      for (const match of text.matchAll(pattern)) {
        const code = match[1]!;
        if (NOT_CODES.has(code)) continue;
        const where = relative(root, file);
        codes.set(code, [...new Set([...(codes.get(code) ?? []), where])]);
      }
    }
  }
  return codes;
}

function tableCodes(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of section("Error codes").split("\n")) {
    const cells = /^\|\s*`([^`]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (cells) rows.set(cells[1]!, cells[2]!.split("|").map((cell) => cell.trim()));
  }
  return rows;
}

describe("README", () => {
  it("the error-code scan finds codes however the sources raise them", () => {
    // The scan itself must not silently miss a style: one sample of each.
    const sample = join(root, "test", "fixtures", "readme-codes.sample.txt");
    const codes = raisedCodes([sample]);
    assert.deepEqual([...codes.keys()].sort(), ["MULTI_LINE", "ONE_LINE", "PREFIXED", "VIA_FAIL", "driver-style"]);
  });

  it("has one error table with every code the sources raise, each with where, exit code and fix", () => {
    const raised = raisedCodes(sourceFiles());
    assert.ok(raised.size >= 40, `found ${raised.size} codes: the scan works`);
    const table = tableCodes();
    const missing = [...raised].filter(([code]) => !table.has(code)).map(([code, files]) => `${code} (${files.join(", ")})`);
    assert.deepEqual(missing, [], "add these codes to the README's Error codes table");
    const stale = [...table.keys()].filter((code) => !raised.has(code));
    assert.deepEqual(stale, [], "the README lists codes no source raises");
    for (const [code, [from, exit, fix]] of table) {
      assert.match(from ?? "", /^(runner|delete|program|driver)(, (runner|delete|program|driver))*$/, `${code}: where it comes from`);
      assert.match(exit ?? "", /^\d+( \/ \d+)*$/, `${code}: exit code`);
      assert.ok((fix ?? "").length > 20, `${code}: says what happened and the fix`);
    }
    assert.equal((readme.match(/^## Error codes$/gm) ?? []).length, 1, "one error table");
  });

  it('"The two commands" shows exactly two: the main job and npm test', () => {
    const blocks = [...section("The two commands").matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
    assert.deepEqual(blocks, ["npm run pipeline -- up --stack dev", "npm test"]);
  });

  it("the layout lists every folder (two levels) and every top-level file in git", () => {
    const layout = section("Layout");
    const tracked = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8" })
      .split("\n")
      .filter(Boolean);
    const entries = new Set<string>();
    for (const path of tracked) {
      const parts = path.split("/");
      if (parts.length === 1) entries.add(parts[0]!);
      else {
        entries.add(`${parts[0]}/`);
        if (parts.length > 2) entries.add(`${parts[0]}/${parts[1]}/`);
      }
    }
    const listed = new Set(layout.split("\n").map((line) => line.split(/\s+/)[0]!));
    const missing = [...entries].filter((entry) => !listed.has(entry)).sort();
    assert.deepEqual(missing, [], "add these to the README's Layout section");
    // The program's own modules are named one by one in the src/ entry.
    const unnamed = tracked
      .filter((path) => /^src\/[^/]+\.ts$/.test(path))
      .map((path) => path.slice("src/".length))
      .filter((file) => !new RegExp(`(^|[\\s,(])${file.replace(".", "\\.")}\\b`, "m").test(layout));
    assert.deepEqual(unnamed, [], "name these src/ modules in the Layout section");
  });

  it("says that only PULUMI_BACKEND_URL overrides backend.url, and how a stack is first created", () => {
    const setUp = section("Set-up");
    assert.match(setUp, /Only the `PULUMI_BACKEND_URL` environment variable overrides the project's\s+`backend.url`/);
    assert.match(setUp, /`pulumi login`\s+does not/);
    assert.match(setUp, /pulumi stack select --create dev/);
    assert.doesNotMatch(readme, /`pulumi stack select (dev|prod|<[a-z]+>)` first/, "a plain stack select fails on a new backend");
  });
});
