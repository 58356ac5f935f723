import { relative } from "node:path";
import { JiraImagesError } from "../errors.ts";
import { PROJECT, loadStackConfigFile, type PromotedPin } from "../config.ts";
import { CONTENT_TRIGGER_NAMES, planStackInputs, type PlannedStage } from "../inputs-hash.ts";
import { describeProblem, stackPreflight, type PreflightProblem } from "../preflight.ts";
import { amiInRegion } from "../runner/result.ts";
import { stackStages } from "../../stages/index.ts";
import type { PlanFormat } from "./args.ts";
import { resolveBackend } from "./backend.ts";
import { checkpointFile, fileBackendDir, readCheckpoint, type RecordedStage } from "./checkpoint.ts";
import type { DriverIo } from "./io.ts";
import { namedTriggers, stageResultOf } from "./progress.ts";

export interface PlanRequest {
  stack: string;
  format: PlanFormat;
  /** Project root (where Pulumi.yaml and `.pulumi-state/` live). */
  root: string;
  /** Environment of the run (for PULUMI_BACKEND_URL, which tells where a checkpoint may be). */
  env: NodeJS.ProcessEnv;
}

export type StageVerdict =
  /** No build of this stage is recorded for the stack. */
  | { kind: "new" }
  /** Named inputs whose hash differs from the recorded trigger. */
  | { kind: "changed"; inputs: string[] }
  /** Its own inputs are the same, but its parent's image is rebuilt. */
  | { kind: "follows"; parent: string }
  /** Its parent is a promoted image other than the one it was built on. */
  | { kind: "parent-ami"; parent: string; from: string; to: string }
  /**
   * Taken from another stack (`jira-images:promoted`): the pinned stage itself, or (`via`) an
   * ancestor that comes with it. `ownAmi`: this stack's own recorded build, which leaves its state.
   */
  | { kind: "promoted"; fromStack: string; amiId: string | undefined; via?: string; ownAmi?: string }
  | { kind: "unchanged" };

export interface StagePlan {
  stage: string;
  parent: string | undefined;
  verdict: StageVerdict;
  rebuild: boolean;
  /** The AMI the last recorded build produced in the stack's region (what the program uses), if any. */
  currentAmi: string | undefined;
}

/** Named content inputs whose recorded value differs (the parent AMI is never known offline). */
function changedInputs(planned: PlannedStage, recorded: RecordedStage): string[] {
  const now = namedTriggers(planned.triggers);
  const before = namedTriggers(recorded.triggers);
  return CONTENT_TRIGGER_NAMES.filter((name) => now.get(name) !== before.get(name));
}

/**
 * Compares every stage's inputs now with what the last `up` recorded. Stages come parents first,
 * so a stage knows whether its parent rebuilds. `region` is the stack's, whose AMI is current. Pure.
 */
export function rebuildPlan(
  planned: readonly PlannedStage[],
  recorded: ReadonlyMap<string, RecordedStage>,
  region: string,
  promotion?: PromotedPin,
): StagePlan[] {
  const rebuilding = new Set<string>();
  const taken = promotion ? new Set(lineage(planned, promotion.stage)) : new Set<string>();
  return planned.map((stage) => {
    const before = recorded.get(stage.stage);
    const result = stageResultOf(before?.stdout);
    const ownAmi = result && amiInRegion(result, region);
    if (promotion && taken.has(stage.stage)) {
      const verdict: StageVerdict = {
        kind: "promoted",
        fromStack: promotion.fromStack,
        amiId: promotion.amiId,
        ...(stage.stage === promotion.stage ? {} : { via: promotion.stage }),
        ...(ownAmi ? { ownAmi } : {}),
      };
      return { stage: stage.stage, parent: stage.parent, verdict, rebuild: false, currentAmi: stage.stage === promotion.stage ? promotion.amiId : undefined };
    }
    let verdict: StageVerdict;
    // A promoted parent's AMI is known offline: the pin names it.
    const pinnedParentAmi = promotion && stage.parent === promotion.stage ? promotion.amiId : undefined;
    const builtOn = before && namedTriggers(before.triggers).get("parentAmi");
    if (before === undefined) verdict = { kind: "new" };
    else {
      const inputs = changedInputs(stage, before);
      if (inputs.length > 0) verdict = { kind: "changed", inputs };
      else if (stage.parent !== undefined && rebuilding.has(stage.parent)) verdict = { kind: "follows", parent: stage.parent };
      else if (pinnedParentAmi !== undefined && builtOn !== pinnedParentAmi) {
        verdict = { kind: "parent-ami", parent: stage.parent!, from: builtOn ?? "unknown", to: pinnedParentAmi };
      } else verdict = { kind: "unchanged" };
    }
    const rebuild = verdict.kind !== "unchanged";
    if (rebuild) rebuilding.add(stage.stage);
    return { stage: stage.stage, parent: stage.parent, verdict, rebuild, currentAmi: ownAmi };
  });
}

/** Names from the root down to `stage` in a planned chain (parents first). */
function lineage(planned: readonly PlannedStage[], stage: string): string[] {
  const parents = new Map(planned.map((p) => [p.stage, p.parent]));
  const chain: string[] = [];
  for (let current: string | undefined = stage; current !== undefined && parents.has(current); current = parents.get(current)) chain.unshift(current);
  return chain;
}

function describeVerdict(verdict: StageVerdict): string {
  switch (verdict.kind) {
    case "new":
      return "not built yet in this stack";
    case "changed":
      return `${verdict.inputs.join(", ")} changed`;
    case "follows":
      return `parent ${verdict.parent} rebuilds`;
    case "parent-ami":
      return `parent AMI changes from ${verdict.from} to ${verdict.to}`;
    case "promoted": {
      const own = verdict.ownAmi ? `; this stack's own build (${verdict.ownAmi}) leaves its state` : "";
      if (verdict.via !== undefined) return `from ${verdict.fromStack} with the promoted ${verdict.via}${own}`;
      return (verdict.amiId ? `promoted from ${verdict.fromStack} ${verdict.amiId}` : `taken from ${verdict.fromStack}, nothing promoted yet`) + own;
    }
    case "unchanged":
      return "inputs unchanged";
  }
}

function actionOf(p: StagePlan): "REBUILD" | "pinned" | "keep" {
  return p.rebuild ? "REBUILD" : p.verdict.kind === "promoted" ? "pinned" : "keep";
}

/**
 * A promotion in one line, as the preview announces it: the pinned stage and what rebuilds on it,
 * e.g. "jira: promoted from dev ami-…; custom-prod rebuilds (parent AMI changes from … to …)".
 */
export function promotionLine(plans: readonly StagePlan[]): string | undefined {
  const pinned = plans.find((p) => p.verdict.kind === "promoted" && p.verdict.via === undefined);
  if (pinned === undefined) return undefined;
  const rebuilt = plans.filter((p) => p.rebuild).map((p) => `${p.stage} rebuilds (${describeVerdict(p.verdict)})`);
  const kept = plans.filter((p) => !p.rebuild && p.verdict.kind !== "promoted").map((p) => `${p.stage} keeps its image`);
  return [`${pinned.stage}: ${describeVerdict(pinned.verdict)}`, ...rebuilt, ...kept].join("; ");
}

export interface PlanContext {
  stack: string;
  /** Where the recorded triggers came from, for the reader. */
  stateSource: string;
  /** What would stop an `up` before it builds anything (src/preflight.ts). */
  blockers?: readonly PreflightProblem[];
  /** Further blockers, one line each (a promotion pin without an AMI). */
  blockerLines?: readonly string[];
}

function blockerLines(context: PlanContext): string[] {
  return [...(context.blockers ?? []).map(describeProblem), ...(context.blockerLines ?? [])];
}

const BLOCKERS_HEADING = "Blockers: an up stops before building anything until these are fixed:";

function countLine(plans: readonly StagePlan[]): string {
  const n = plans.filter((p) => p.rebuild).length;
  const taken = plans.filter((p) => p.verdict.kind === "promoted");
  const from = taken[0]?.verdict.kind === "promoted" ? `, ${taken.length} taken from ${taken[0].verdict.fromStack}` : "";
  return `${n} of ${plans.length} stages rebuild${from}`;
}

export function renderText(plans: readonly StagePlan[], context: PlanContext): string {
  const width = Math.max(5, ...plans.map((p) => p.stage.length));
  const lines = [`Rebuild plan for stack ${context.stack}, compared with ${context.stateSource}`];
  for (const p of plans) {
    const ami = p.currentAmi ? `  [now ${p.currentAmi}]` : "";
    lines.push(`  ${p.stage.padEnd(width)}  ${actionOf(p).padEnd(7)}  ${describeVerdict(p.verdict)}${ami}`);
  }
  lines.push(`${countLine(plans)}.`);
  const promotion = promotionLine(plans);
  if (promotion) lines.push(`Promotion: ${promotion}`);
  const blockers = blockerLines(context);
  if (blockers.length) lines.push(BLOCKERS_HEADING, ...blockers.map((b) => `  ${b}`));
  return `${lines.join("\n")}\n`;
}

/** Mermaid node ids allow letters, digits and underscores safely; the label keeps the real name. */
function nodeId(stage: string): string {
  return stage.replace(/[^A-Za-z0-9_]/g, "_");
}

export function renderMarkdown(plans: readonly StagePlan[], context: PlanContext): string {
  const code = (s: string) => `\`${s}\``;
  const rows = plans.map((p) => {
    const why = p.verdict.kind === "changed" ? `${p.verdict.inputs.map(code).join(", ")} changed` : describeVerdict(p.verdict);
    const action = p.rebuild ? "**rebuild**" : actionOf(p);
    return `| ${code(p.stage)} | ${p.parent ? code(p.parent) : "—"} | ${action} | ${why} | ${p.currentAmi ? code(p.currentAmi) : "—"} |`;
  });
  const graph = ["```mermaid", "graph LR"];
  for (const p of plans) {
    const node = `${nodeId(p.stage)}["${p.stage}"]`;
    graph.push(p.parent === undefined ? `  ${node}` : `  ${nodeId(p.parent)} --> ${node}`);
  }
  const rebuilt = plans.filter((p) => p.rebuild).map((p) => nodeId(p.stage));
  graph.push("  classDef rebuild fill:#ffe3e3,stroke:#d1242f,stroke-width:2px");
  if (rebuilt.length > 0) graph.push(`  class ${rebuilt.join(",")} rebuild`);
  const pinned = plans.filter((p) => p.verdict.kind === "promoted").map((p) => nodeId(p.stage));
  if (pinned.length > 0) graph.push("  classDef pinned fill:#ddf4ff,stroke:#0969da,stroke-dasharray:4 2", `  class ${pinned.join(",")} pinned`);
  graph.push("```");
  const promotion = promotionLine(plans);
  const blockers = blockerLines(context);
  return [
    `### Image rebuild plan: stack \`${context.stack}\``,
    "",
    `${countLine(plans)} (compared with ${context.stateSource}).`,
    "",
    ...(promotion ? [`**Promotion:** ${promotion}`, ""] : []),
    "| Stage | Parent | Action | Why | Current AMI |",
    "|---|---|---|---|---|",
    ...rows,
    "",
    ...(blockers.length ? [`**${BLOCKERS_HEADING}**`, "", ...blockers.map((b) => `- ${b}`), ""] : []),
    ...graph,
    "",
  ].join("\n");
}

/** Finds the stack's recorded triggers, if this backend can be read offline. */
function loadRecorded(request: PlanRequest): { recorded: Map<string, RecordedStage>; source: string } {
  const backend = resolveBackend(request.env, request.root);
  const dir = fileBackendDir(backend.url, request.root);
  const shown = (path: string) => relative(request.root, path) || ".";
  if (dir === undefined) {
    return { recorded: new Map(), source: `no recorded state (the ${backend.url} backend cannot be read offline)` };
  }
  const file = checkpointFile(dir, PROJECT, request.stack);
  if (file === undefined) {
    return { recorded: new Map(), source: `no recorded state (no checkpoint of stack ${request.stack} in ${shown(dir)})` };
  }
  return { recorded: readCheckpoint(file), source: `the checkpoint ${shown(file)}` };
}

/** `npm run pipeline -- plan`: needs neither the Pulumi CLI nor AWS. Returns the exit code. */
export async function runPlan(request: PlanRequest, io: DriverIo): Promise<number> {
  let plans: StagePlan[];
  let source: string;
  let blockers: PreflightProblem[];
  const pending: string[] = [];
  try {
    const config = loadStackConfigFile(request.root, request.stack);
    const planned = planStackInputs(config, request.root);
    const loaded = loadRecorded(request);
    plans = rebuildPlan(planned, loaded.recorded, config.region, config.promoted);
    source = loaded.source;
    // As the program: a promoted stage is never built here, so its files cannot stop an up.
    const taken = new Set(plans.filter((p) => p.verdict.kind === "promoted").map((p) => p.stage));
    blockers = stackPreflight(stackStages(config, request.root).filter((s) => !taken.has(s.name)), request.root, request.env);
    const pin = config.promoted;
    if (pin && pin.amiId === undefined) {
      pending.push(
        `PROMOTION_PENDING Pulumi.${request.stack}.yaml: ${PROJECT}:promoted takes ${pin.stage} from ${pin.fromStack}, but no image is promoted yet; ` +
          `run \`npm run pipeline -- promote --from ${pin.fromStack} --to ${request.stack}\``,
      );
    }
  } catch (error) {
    if (!(error instanceof JiraImagesError)) throw error;
    io.stderr(`${error.message}\n`);
    return 1;
  }
  const context = { stack: request.stack, stateSource: source, blockers, blockerLines: pending };
  io.stdout(request.format === "markdown" ? renderMarkdown(plans, context) : renderText(plans, context));
  return 0;
}
