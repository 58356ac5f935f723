import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const created: string[] = [];

/**
 * A fresh scratch folder, removed when the test process exits (KEEP_TEST_TMP=1 keeps them for
 * debugging), so that repeated test runs do not pile up folders in the system temp dir.
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (created.length === 0 && process.env.KEEP_TEST_TMP !== "1") {
    process.once("exit", () => created.forEach((path) => rmSync(path, { recursive: true, force: true })));
  }
  created.push(dir);
  return dir;
}
