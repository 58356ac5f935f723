import { accessSync, constants } from "node:fs";
import { delimiter, join, resolve } from "node:path";

/** Where scripts/install-test-tools.sh puts the real tools (Pulumi CLI, plugins, Packer, moto). */
export const TOOLS_DIR = resolve(process.env.JIRA_IMAGES_TOOLS_DIR ?? join(import.meta.dirname, "..", "..", ".tools"));
export const TOOLS_BIN = join(TOOLS_DIR, "bin");

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The path of a real tool, from .tools/bin first, then PATH. A missing tool fails the test with
 * the command that builds it: a test never passes by skipping its tool.
 */
export function realTool(name: string): string {
  for (const dir of [TOOLS_BIN, ...(process.env.PATH ?? "").split(delimiter)]) {
    if (dir !== "" && executable(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} not found in ${TOOLS_BIN} or on PATH: run \`bash scripts/install-test-tools.sh\` (builds the test tools into .tools/)`);
}

/** The environment for a child process that must find the real tools first. */
export function realToolsEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${TOOLS_BIN}${delimiter}${process.env.PATH ?? ""}`, ...extra };
}
