import { readFileSync } from "node:fs";
import { join } from "node:path";
import { JiraImagesError } from "./errors.ts";

/**
 * The image tests (packer/common/image-tests): a runner (run.sh) and one suite file per stage kind,
 * each declaring its checks as `check "<name>" <function>` lines. A stage runs a list of suites on
 * its build instance as its last provisioner; this module counts their checks (the stage passes
 * the count to Packer, the runner checks it ran exactly that many, the AMI is tagged with it) and
 * reads the runner's result line out of Packer's output.
 */
export const IMAGE_TESTS_DIR = "packer/common/image-tests";
export const IMAGE_TESTS_RUNNER = `${IMAGE_TESTS_DIR}/run.sh`;

/** The suite file of `suite`, relative to the project root. */
export function suiteFile(suite: string): string {
  return `${IMAGE_TESTS_DIR}/${suite}.sh`;
}

/** The files a stage's tests are made of (the runner and its suites): the `tests` trigger hashes these. */
export function imageTestFiles(suites: readonly string[]): string[] {
  return suites.length === 0 ? [] : [IMAGE_TESTS_RUNNER, ...suites.map(suiteFile)];
}

const CHECK_LINE = /^check "([^"]+)" [A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The check names a suite file declares, in order. A `check` line in any other form would run
 * without being counted, so it is refused, as is a name used twice.
 */
export function suiteChecks(file: string, text: string): string[] {
  const names: string[] = [];
  text.split("\n").forEach((line, index) => {
    if (!/^\s*check\s/.test(line)) return;
    const match = CHECK_LINE.exec(line);
    if (!match) {
      throw new JiraImagesError(
        "IMAGE_TESTS_INVALID",
        `${file}:${index + 1}: a check must be declared on one line as \`check "<name>" <function>\` at the start of the line, found: ${line.trim()}`,
      );
    }
    if (names.includes(match[1]!)) {
      throw new JiraImagesError("IMAGE_TESTS_INVALID", `${file}:${index + 1}: check "${match[1]}" is declared twice; give each check its own name`);
    }
    names.push(match[1]!);
  });
  return names;
}

/** The checks of a stage's suites under `projectRoot`, `suite: name` in run order; a missing or empty suite is an error. */
export function stageCheckNames(stage: string, suites: readonly string[], projectRoot: string): string[] {
  return suites.flatMap((suite) => {
    const file = suiteFile(suite);
    let text: string;
    try {
      text = readFileSync(join(projectRoot, file), "utf8");
    } catch {
      throw new JiraImagesError("IMAGE_TESTS_INVALID", `stage ${stage}: image test suite ${suite} has no file ${file}`);
    }
    const names = suiteChecks(file, text);
    if (names.length === 0) throw new JiraImagesError("IMAGE_TESTS_INVALID", `stage ${stage}: ${file} declares no check`);
    return names.map((name) => `${suite}: ${name}`);
  });
}

/** What run.sh prints last: `image-tests: stage=<stage> passed=<n> failed=<n>`. */
export interface ImageTestsLine {
  stage: string;
  passed: number;
  failed: number;
}

const RESULT_LINE = /(?:^|[\s:])image-tests: stage=([a-z][a-z0-9-]*) passed=(\d+) failed=(\d+)\s*$/;

/** The result line in one line of output (Packer prefixes it with `    <build>: `), or undefined. */
export function parseImageTestsLine(text: string): ImageTestsLine | undefined {
  const match = RESULT_LINE.exec(text);
  if (!match) return undefined;
  return { stage: match[1]!, passed: Number(match[2]), failed: Number(match[3]) };
}

/** The Packer variables of a stage's tests: which suites run and how many checks they hold. */
export const IMAGE_TEST_VARS = { suites: "image_test_suites", count: "image_tests_count" } as const;
