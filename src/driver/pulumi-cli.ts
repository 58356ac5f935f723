import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import type { PulumiCommand } from "@pulumi/pulumi/automation/index.js";
import { JiraImagesError } from "../errors.ts";

const INSTALL_HINT =
  "install the Pulumi CLI: `curl -fsSL https://get.pulumi.com | sh` (then open a new shell), " +
  "or your package manager (`brew install pulumi/tap/pulumi`, `choco install pulumi`, ...); " +
  "see https://www.pulumi.com/docs/iac/download-install/. " +
  "`npm run pipeline -- plan --stack <s>` works without it.";

/** A spawn of the `pulumi` executable that failed because it is not on PATH. */
export function isMissingCliError(err: unknown): boolean {
  // By name, not `instanceof CommandError`: this module must load without the Automation API.
  if (!(err instanceof Error) || !(err.name === "CommandError" || ("code" in err && err.code === "ENOENT"))) return false;
  return /\bENOENT\b/.test(err.message) && /pulumi/.test(err.message);
}

export function missingCliError(cause?: unknown): JiraImagesError {
  return new JiraImagesError("pulumi-cli-missing", `the Pulumi CLI (\`pulumi\`) was not found on PATH; ${INSTALL_HINT}`, {
    cause,
  });
}

/** The executable `name` on `PATH` as a shell would find it, or undefined. */
export function findOnPath(name: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not there, or not executable: the next PATH entry.
    }
  }
  return undefined;
}

/**
 * Finds the CLI once, before any work. A `pulumi` missing from PATH is reported at once, without
 * loading the Automation API (about a second); otherwise `pulumi version` checks that it is usable
 * and the result is handed to the workspace.
 */
export async function detectPulumiCli(env: NodeJS.ProcessEnv = process.env): Promise<PulumiCommand> {
  if (findOnPath("pulumi", env.PATH) === undefined) throw missingCliError();
  const { PulumiCommand } = await import("@pulumi/pulumi/automation/index.js");
  try {
    return await PulumiCommand.get();
  } catch (err) {
    if (isMissingCliError(err)) throw missingCliError(err);
    // An installed but unusable CLI (e.g. older than the SDK's minimum): its own message is clear.
    throw new JiraImagesError("pulumi-cli-unusable", firstLine(err), { cause: err });
  }
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split("\n").find((line) => line.trim().length > 0)?.trim() ?? text;
}
