/**
 * The driver's `prune` command: what every stack of the project references (its exported state,
 * through the Automation API, and its stack file), then src/lifecycle/prune.ts in the stack's
 * regions. Exit 0 done (or dry run), 1 nothing removed because something could not be read,
 * 4 some removals failed (the rest went; run it again).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { PulumiCommand } from "@pulumi/pulumi/automation/index.js";
import { parse as parseYaml } from "yaml";
import { loadStackConfigFile } from "../config.ts";
import { errorText, RegionalEc2 } from "../lifecycle/ec2.ts";
import { prune } from "../lifecycle/prune.ts";
import { addReferences, amiIdsIn, referencesInDeployment } from "../lifecycle/retention.ts";
import type { DriverIo } from "./io.ts";

export const PRUNE_EXIT = { ok: 0, failed: 1, incomplete: 4 } as const;

export interface PruneCommand {
  stack: string;
  keep: number;
  olderThanDays: number;
  apply: boolean;
  root: string;
  /** PULUMI_BACKEND_URL etc. for the Automation API. */
  envVars: Record<string, string>;
  pulumiCommand?: PulumiCommand;
}

/** AMI IDs named in the project's stack files (a promotion pin's `amiId`, a pinned `sourceAmi`). */
export function stackFileReferences(root: string): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const file of readdirSync(root).filter((f) => /^Pulumi\..+\.yaml$/.test(f)).sort()) {
    const config = (parseYaml(readFileSync(join(root, file), "utf8")) as { config?: Record<string, unknown> } | null)?.config ?? {};
    for (const [key, value] of Object.entries(config)) {
      for (const id of amiIdsIn(value)) found.push([id, `${file} (${key})`]);
    }
  }
  return found;
}

/** Every stack of the project on the backend, exported (no passphrase needed: secrets stay encrypted). */
async function stateReferences(command: PruneCommand): Promise<Array<[string, string]>> {
  const { LocalWorkspace } = await import("@pulumi/pulumi/automation/index.js");
  const workspace = await LocalWorkspace.create({
    workDir: command.root,
    envVars: command.envVars,
    ...(command.pulumiCommand ? { pulumiCommand: command.pulumiCommand } : {}),
  });
  const found: Array<[string, string]> = [];
  for (const summary of await workspace.listStacks()) {
    found.push(...referencesInDeployment(summary.name, await workspace.exportStack(summary.name)));
  }
  return found;
}

export async function runPrune(command: PruneCommand, io: DriverIo): Promise<number> {
  const err = (line: string) => io.stderr(`${line}\n`);
  const config = loadStackConfigFile(command.root, command.stack);
  const ec2 = new RegionalEc2();
  try {
    const outcome = await prune(
      {
        stack: command.stack,
        regions: [...new Set([config.region, ...config.amiRegions])],
        keep: command.keep,
        olderThanDays: command.olderThanDays,
        apply: command.apply,
        now: new Date(),
      },
      {
        client: (region) => ec2.client(region),
        references: async () => {
          const references = new Map<string, string[]>();
          addReferences(references, stackFileReferences(command.root));
          addReferences(references, await stateReferences(command));
          return references;
        },
        out: (line) => io.stdout(`${line}\n`),
      },
    );
    if (outcome.failures.length > 0) {
      err(`prune-incomplete: ${outcome.failures.length} removal(s) failed (listed above); everything else was removed. Fix the cause (often permissions) and run the same command again: it finishes the job.`);
      return PRUNE_EXIT.incomplete;
    }
    return PRUNE_EXIT.ok;
  } catch (error) {
    err(`prune-failed: nothing was removed: ${errorText(error)}`);
    return PRUNE_EXIT.failed;
  } finally {
    ec2.destroy();
  }
}
