import { join } from "node:path";
import { JiraImagesError } from "../errors.ts";
import { loadStackConfigFile } from "../config.ts";
import { RegionalEc2, errorText, type SharedClientConfig } from "../lifecycle/ec2.ts";
import { findSweepResources, removeSweepResources, type RemovalOutcome } from "../lifecycle/sweep-ec2.ts";
import { amisInState, decide, describeAction, REMOVAL_ORDER, type SweepResource } from "../lifecycle/sweep.ts";
import { STAGE_TAG } from "../lifecycle/tags.ts";
import { parseStageStdout } from "../runner/result.ts";
import { liveRunIds } from "../runner/run-marker.ts";
import { stageOfCommandUrn } from "../stages.ts";
import { resolveBackend } from "./backend.ts";
import type { DriverIo } from "./io.ts";
import { isMissingCliError, missingCliError } from "./pulumi-cli.ts";

export const SWEEP_EXIT = {
  ok: 0,
  /** Nothing removed: the state or EC2 could not be read. */
  failed: 1,
  /** A prerequisite is missing (Pulumi CLI, passphrase). */
  prerequisite: 3,
  /** Some removals failed, the others were done; a rerun finishes. */
  incomplete: 4,
} as const;

export interface SweepRequest {
  stack: string;
  apply: boolean;
}

export interface SweepDeps {
  root: string;
  env: NodeJS.ProcessEnv;
  io: DriverIo;
  now: () => number;
  /** The stack's state export (a Pulumi deployment), through the Automation API. */
  readState: (stack: string) => Promise<unknown>;
  /** EC2 client settings (tests: an endpoint or a mock's handler). */
  ec2Config?: SharedClientConfig;
  terminateWaitSeconds?: number;
}

/** The stage commands' results in a state export: stage -> its AMIs (every region). */
export function recordedStageAmis(deployment: unknown): Map<string, Set<string>> {
  const recorded = new Map<string, Set<string>>();
  const root = (deployment as { deployment?: { resources?: unknown } } | undefined)?.deployment ?? deployment;
  const resources = (root as { resources?: unknown } | undefined)?.resources;
  if (!Array.isArray(resources)) return recorded;
  for (const resource of resources as Array<{ urn?: string; type?: string; outputs?: { stdout?: unknown } }>) {
    const stage = resource.type === "command:local:Command" && resource.urn ? stageOfCommandUrn(resource.urn) : undefined;
    if (stage === undefined || typeof resource.outputs?.stdout !== "string") continue;
    try {
      const result = parseStageStdout(stage, resource.outputs.stdout);
      const amis = recorded.get(stage) ?? new Set<string>();
      for (const ami of [result.amiId, ...Object.values(result.amis)]) amis.add(ami);
      recorded.set(stage, amis);
    } catch {
      // Not a runner result (an older or damaged one): its AMIs still count through amisInState.
    }
  }
  return recorded;
}

/** Per stage, the newest creation date of the images the state records for it. */
function recordedCreation(recorded: Map<string, Set<string>>, images: readonly SweepResource[]): Map<string, string> {
  const created = new Map<string, string>();
  for (const image of images) {
    const stage = image.tags[STAGE_TAG];
    if (stage === undefined || image.created === undefined || !recorded.get(stage)?.has(image.id)) continue;
    const known = created.get(stage);
    if (known === undefined || image.created > known) created.set(stage, image.created);
  }
  return created;
}

/** The real state reader: `pulumi stack export` through the Automation API, never creating a stack. */
export async function automationStateReader(root: string, env: NodeJS.ProcessEnv): Promise<(stack: string) => Promise<unknown>> {
  const backend = resolveBackend(env, root);
  const { detectPulumiCli } = await import("./pulumi-cli.ts");
  const pulumiCommand = await detectPulumiCli(env);
  return async (stack) => {
    const { LocalWorkspace } = await import("@pulumi/pulumi/automation/index.js");
    const selected = await LocalWorkspace.selectStack(
      { stackName: stack, workDir: root },
      {
        workDir: root,
        pulumiCommand,
        // Exporting needs no passphrase: secret values stay encrypted in an export.
        envVars: { PULUMI_BACKEND_URL: backend.url, PULUMI_SKIP_UPDATE_CHECK: "true" },
      },
    );
    return selected.exportStack();
  };
}

/**
 * `npm run pipeline -- sweep --stack <s> [--apply]`: what builds that no longer run left behind in
 * every region of the stack (instances, volumes, security groups, key pairs with the stack's run
 * tags, and images no state references), printed, and removed with `--apply`. Never throws.
 */
export async function runSweep(request: SweepRequest, deps: SweepDeps): Promise<number> {
  const say = (line: string): void => deps.io.stderr(`${line}\n`);
  const ec2 = new RegionalEc2(deps.ec2Config ?? {});
  try {
    const config = loadStackConfigFile(deps.root, request.stack);
    const regions = [...new Set([config.region, ...config.amiRegions])];
    let deployment: unknown;
    try {
      deployment = await deps.readState(request.stack);
    } catch (error) {
      return await stateError(error, request.stack, say);
    }
    const now = new Date(deps.now());
    const live = liveRunIds(join(deps.root, ".packer-logs"));
    const found: SweepResource[] = [];
    for (const region of regions) {
      try {
        found.push(...(await findSweepResources(ec2.client(region), region, request.stack)));
      } catch (error) {
        say(`sweep-failed: listing the build resources of stack "${request.stack}" in ${region} failed, nothing was removed: ${errorText(error)}`);
        return SWEEP_EXIT.failed;
      }
    }
    const decisions = decide(found, {
      now,
      timeoutSeconds: config.buildTimeoutSeconds,
      liveRunIds: live,
      referencedAmis: amisInState(deployment),
      recordedImageCreated: recordedCreation(recordedStageAmis(deployment), found.filter((r) => r.kind === "image")),
      keepsReplacedImages: !config.deregisterReplacedImages,
    });
    const chosen = decisions.filter((d) => d.remove).sort((a, b) => REMOVAL_ORDER.indexOf(a.resource.kind) - REMOVAL_ORDER.indexOf(b.resource.kind));
    const kept = decisions.filter((d) => !d.remove && !d.reason.startsWith("the stack's state references"));
    say(`sweep: stack "${request.stack}", regions ${regions.join(", ")}: ${chosen.length} to remove, ${kept.length} kept`);
    for (const d of kept) say(`  keep ${d.resource.kind} ${d.resource.id} (${d.resource.region}): ${d.reason}`);
    if (!request.apply) {
      for (const d of chosen) say(`  would ${describeAction(d)}`);
      if (chosen.length > 0) say(`sweep: dry run, nothing removed; \`npm run pipeline -- sweep --stack ${request.stack} --apply\` removes them`);
      return SWEEP_EXIT.ok;
    }
    const outcomes: RemovalOutcome[] = [];
    for (const region of regions) {
      const inRegion = chosen.filter((d) => d.resource.region === region);
      if (inRegion.length === 0) continue;
      outcomes.push(...(await removeSweepResources(ec2.client(region), inRegion, { terminateWaitSeconds: deps.terminateWaitSeconds ?? 600 })));
    }
    for (const o of outcomes) say(o.error === undefined ? `  done: ${describeAction(o.decision)}` : `  FAILED: ${describeAction(o.decision)}: ${o.error}`);
    const failed = outcomes.filter((o) => o.error !== undefined);
    if (failed.length > 0) {
      say(
        `sweep-incomplete: ${failed.length} of ${outcomes.length} removals failed (listed above); the others are done. ` +
          `Fix what AWS says (permissions: README "sweep"), then run the same command again: it finds what is left.`,
      );
      return SWEEP_EXIT.incomplete;
    }
    say(`sweep: removed ${outcomes.length}`);
    return SWEEP_EXIT.ok;
  } catch (error) {
    if (error instanceof JiraImagesError) {
      say(error.message);
      return SWEEP_EXIT.failed;
    }
    say(`sweep-failed: ${errorText(error)}`);
    return SWEEP_EXIT.failed;
  } finally {
    ec2.destroy();
  }
}

async function stateError(error: unknown, stack: string, say: (line: string) => void): Promise<number> {
  if (isMissingCliError(error)) {
    say(missingCliError(error).message);
    return SWEEP_EXIT.prerequisite;
  }
  if (error instanceof JiraImagesError) {
    say(error.message);
    return error.code.startsWith("pulumi-cli") || error.code === "pipeline-passphrase" ? SWEEP_EXIT.prerequisite : SWEEP_EXIT.failed;
  }
  const { StackNotFoundError } = await import("@pulumi/pulumi/automation/index.js");
  if (error instanceof StackNotFoundError) {
    say(`pipeline-stack-missing: stack "${stack}" does not exist on this backend; sweep needs its state to know which images are in use, so nothing was removed`);
    return SWEEP_EXIT.failed;
  }
  say(`sweep-failed: reading the state of stack "${stack}" failed, nothing was removed: ${errorText(error)}`);
  return SWEEP_EXIT.failed;
}

