import { readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { OutputMap } from "@pulumi/pulumi/automation/index.js";
import { JiraImagesError } from "../errors.ts";
import { PROJECT, isSameStack, loadStackConfigFile } from "../config.ts";
import { customStageName, lineage } from "../stages.ts";
import { declareStages } from "../../stages/index.ts";
import { checkPassphrase, resolveBackend, type BackendSettings } from "./backend.ts";
import { choosePromotion, promotionEffects, renderEffects, type Promotion } from "./promote.ts";
import { isMissingCliError, missingCliError } from "./pulumi-cli.ts";
import { commandErrorDetails, EXIT, type DriverDeps } from "./run.ts";
import { setStackConfigValue } from "./stack-file.ts";

/** The config key of a stack's promotion pin (`Pulumi.<stack>.yaml`). */
export const PROMOTED_KEY = `${PROJECT}:promoted`;

export interface PromoteRequest {
  /** Source stack: `dev` or `org/project/stack`. */
  from: string;
  /** Target stack; its `Pulumi.<to>.yaml` is the file written. */
  to: string;
  stage: string;
}

export type PromoteDeps = Pick<DriverDeps, "root" | "env" | "io" | "detectCli" | "stackFactory">;

function plainOutputs(outputs: OutputMap): Record<string, unknown> {
  return Object.fromEntries(Object.entries(outputs).map(([key, output]) => [key, output.value]));
}

/** Writes the file through a temporary file and a rename: an interrupted write never leaves half a stack file. */
function replaceFile(file: string, text: string): void {
  const temporary = `${file}.promote-${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: statSync(file).mode });
  renameSync(temporary, file);
}

/**
 * `npm run pipeline -- promote --from dev --to prod [--stage jira]`: pins the source stack's
 * current, tested image of `stage` in `Pulumi.<to>.yaml` and says what the next `up` of the
 * target rebuilds. Reads stack outputs through the Automation API; writes only the local file.
 * Returns the exit code and never throws.
 */
export async function runPromote(request: PromoteRequest, deps: PromoteDeps): Promise<number> {
  const say = (line: string): void => deps.io.stderr(`${line}\n`);
  const file = `Pulumi.${request.to}.yaml`;
  let backend: BackendSettings | undefined;
  let reading = request.from;
  try {
    if (isSameStack(request.from, request.to)) {
      throw new JiraImagesError("pipeline-usage", `--from and --to name the same stack (${request.to}); promote from another stack, e.g. --from dev --to prod`);
    }
    // The target's file is checked first: a typo in it should not wait for the backend.
    const config = loadStackConfigFile(deps.root, request.to);
    const stages = declareStages(config);
    const leaf = customStageName(config.environment);
    const chain = lineage(stages, leaf);
    if (!chain.slice(0, -1).includes(request.stage)) {
      throw new JiraImagesError(
        "pipeline-usage",
        `--stage ${request.stage}: stack ${request.to} can take one of ${chain.slice(0, -1).join(", ")} from another stack (its own ${leaf} is always built)`,
      );
    }

    const pulumiCommand = await deps.detectCli();
    backend = resolveBackend(deps.env, deps.root);
    checkPassphrase(deps.env, backend);
    const open = (stackName: string) =>
      deps.stackFactory({
        stackName,
        root: deps.root,
        create: false,
        envVars: { PULUMI_BACKEND_URL: backend!.url, PULUMI_SKIP_UPDATE_CHECK: "true" },
        ...(backend!.selfManaged ? { secretsProvider: "passphrase" } : {}),
        ...(pulumiCommand ? { pulumiCommand } : {}),
      });
    say(`promote: reading stack ${request.from}'s outputs (backend ${backend.url})`);
    const source = plainOutputs(await (await open(request.from)).outputs());
    const promotion = choosePromotion(source, { fromStack: request.from, stage: request.stage, region: config.region });

    reading = request.to;
    const targetImages = await targetImagesOf(() => open(request.to));

    const path = join(deps.root, file);
    const edit = setStackConfigValue(readFileSync(path, "utf8"), file, {
      key: PROMOTED_KEY,
      value: { ...promotion.pin },
      comment: "Promotion: the image this stack takes from another stack (`npm run pipeline -- promote`); reverting this rolls it back.",
    });
    if (edit.changed) replaceFile(path, edit.text);
    const effects = promotionEffects(promotion, stages, request.to, targetImages);
    deps.io.stdout(
      [
        edit.changed ? `promote: ${file}: ${PROMOTED_KEY} now pins ${pinText(promotion)} (${previousText(edit.previous)})` : `promote: ${file} already pins ${pinText(promotion)}; nothing written`,
        `The next \`npm run pipeline -- up --stack ${request.to}\`${targetImages === undefined ? ` (stack ${request.to} has no state on ${backend.url} yet)` : ""}:`,
        ...renderEffects(effects),
        edit.changed
          ? `Nothing in AWS changed. Review the change to ${file} in a pull request; reverting it rolls the promotion back.`
          : "Nothing in AWS changed.",
        "",
      ].join("\n"),
    );
    return EXIT.ok;
  } catch (err) {
    return await report(err, reading, deps, backend);
  }
}

function pinText(promotion: Promotion): string {
  const { fromStack, stage, amiId } = promotion.pin;
  return `${fromStack}'s ${stage} ${amiId} (tests passed, ${promotion.tests.count})`;
}

function previousText(previous: unknown): string {
  if (previous === undefined) return "it had no promotion before";
  const before = previous as { fromStack?: unknown; stage?: unknown; amiId?: unknown } | null;
  if (typeof before?.amiId === "string") return `before: ${String(before.fromStack)}'s ${String(before.stage)} ${before.amiId}`;
  if (typeof before?.fromStack === "string") return `before: ${before.fromStack}'s ${String(before.stage)}, nothing promoted yet`;
  return `before: ${JSON.stringify(previous)}`;
}

/** The target's current `images` output, or undefined when the stack does not exist on the backend yet. */
async function targetImagesOf(open: () => Promise<{ outputs(): Promise<OutputMap> }>): Promise<Record<string, unknown> | undefined> {
  const { StackNotFoundError } = await import("@pulumi/pulumi/automation/index.js");
  try {
    const images = plainOutputs(await (await open()).outputs()).images;
    return typeof images === "object" && images !== null ? (images as Record<string, unknown>) : {};
  } catch (err) {
    if (err instanceof StackNotFoundError) return undefined;
    throw err;
  }
}

/** One clear message on stderr and the exit code, as the other driver commands report. */
async function report(err: unknown, stack: string, deps: PromoteDeps, backend: BackendSettings | undefined): Promise<number> {
  const say = (line: string): void => deps.io.stderr(`${line}\n`);
  if (isMissingCliError(err)) {
    say(missingCliError(err).message);
    return EXIT.prerequisite;
  }
  if (err instanceof JiraImagesError) {
    say(err.message);
    if (err.code === "pipeline-usage") return EXIT.usage;
    return err.code.startsWith("pulumi-cli") || err.code === "pipeline-passphrase" ? EXIT.prerequisite : EXIT.failed;
  }
  const { CommandError, StackNotFoundError } = await import("@pulumi/pulumi/automation/index.js");
  const url = (backend ?? resolveBackend(deps.env, deps.root)).url;
  if (err instanceof StackNotFoundError) {
    say(
      `pipeline-stack-missing: stack "${stack}" does not exist in ${url}; nothing to promote from. ` +
        `Build it first with \`npm run pipeline -- up --stack ${stack}\` (or point PULUMI_BACKEND_URL at the backend that holds it)`,
    );
    return EXIT.failed;
  }
  if (err instanceof CommandError) {
    const { exitCode, stderr } = commandErrorDetails(err);
    say(`pipeline-failed: pulumi failed reading stack ${stack}${exitCode !== undefined ? ` (exit code ${exitCode})` : ""}`);
    if (stderr) say(stderr.split("\n").slice(-30).join("\n"));
    return EXIT.failed;
  }
  say(`pipeline-failed: ${err instanceof Error ? err.message : String(err)}`);
  return EXIT.failed;
}
