import { CommandError, PulumiCommand } from "@pulumi/pulumi/automation/index.js";
import { JiraImagesError } from "../errors.ts";

const INSTALL_HINT =
  "install the Pulumi CLI: `curl -fsSL https://get.pulumi.com | sh` (then open a new shell), " +
  "or your package manager (`brew install pulumi/tap/pulumi`, `choco install pulumi`, ...); " +
  "see https://www.pulumi.com/docs/iac/download-install/. " +
  "`npm run pipeline -- plan --stack <s>` works without it.";

/** A spawn of the `pulumi` executable that failed because it is not on PATH. */
export function isMissingCliError(err: unknown): boolean {
  if (!(err instanceof CommandError) && !(err instanceof Error && "code" in err && err.code === "ENOENT")) {
    return false;
  }
  return /\bENOENT\b/.test(err.message) && /pulumi/.test(err.message);
}

export function missingCliError(cause: unknown): JiraImagesError {
  return new JiraImagesError("pulumi-cli-missing", `the Pulumi CLI (\`pulumi\`) was not found on PATH; ${INSTALL_HINT}`, {
    cause,
  });
}

/**
 * Finds the CLI once (`pulumi version`), before any work, so that a missing CLI is reported in a
 * second rather than after a stack operation started. The result is handed to the workspace.
 */
export async function detectPulumiCli(): Promise<PulumiCommand> {
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
