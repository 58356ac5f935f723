import { relative } from "node:path";
import { JiraImagesError } from "../errors.ts";
import { PROJECT, loadStackConfigFile } from "../config.ts";
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
export function rebuildPlan(planned: readonly PlannedStage[], recorded: ReadonlyMap<string, RecordedStage>, region: string): StagePlan[] {
  const rebuilding = new Set<string>();
  return planned.map((stage) => {
    const before = recorded.get(stage.stage);
    let verdict: StageVerdict;
    if (before === undefined) verdict = { kind: "new" };
    else {
      const inputs = changedInputs(stage, before);
      if (inputs.length > 0) verdict = { kind: "changed", inputs };
      else if (stage.parent !== undefined && rebuilding.has(stage.parent)) verdict = { kind: "follows", parent: stage.parent };
      else verdict = { kind: "unchanged" };
    }
    const rebuild = verdict.kind !== "unchanged";
    if (rebuild) rebuilding.add(stage.stage);
    const result = stageResultOf(before?.stdout);
    return { stage: stage.stage, parent: stage.parent, verdict, rebuild, currentAmi: result && amiInRegion(result, region) };
  });
}

function describeVerdict(verdict: StageVerdict): string {
  switch (verdict.kind) {
    case "new":
      return "not built yet in this stack";
    case "changed":
      return `${verdict.inputs.join(", ")} changed`;
    case "follows":
      return `parent ${verdict.parent} rebuilds`;
    case "unchanged":
      return "inputs unchanged";
  }
}

export interface PlanContext {
  stack: string;
  /** Where the recorded triggers came from, for the reader. */
  stateSource: string;
  /** What would stop an `up` before it builds anything (src/preflight.ts). */
  blockers?: readonly PreflightProblem[];
}

const BLOCKERS_HEADING = "Blockers: an up stops before building anything until these are fixed:";

function countLine(plans: readonly StagePlan[]): string {
  const n = plans.filter((p) => p.rebuild).length;
  return `${n} of ${plans.length} stages rebuild`;
}

export function renderText(plans: readonly StagePlan[], context: PlanContext): string {
  const width = Math.max(5, ...plans.map((p) => p.stage.length));
  const lines = [`Rebuild plan for stack ${context.stack}, compared with ${context.stateSource}`];
  for (const p of plans) {
    const action = p.rebuild ? "REBUILD" : "keep   ";
    const ami = p.currentAmi ? `  [now ${p.currentAmi}]` : "";
    lines.push(`  ${p.stage.padEnd(width)}  ${action}  ${describeVerdict(p.verdict)}${ami}`);
  }
  lines.push(`${countLine(plans)}.`);
  if (context.blockers?.length) lines.push(BLOCKERS_HEADING, ...context.blockers.map((b) => `  ${describeProblem(b)}`));
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
    return `| ${code(p.stage)} | ${p.parent ? code(p.parent) : "—"} | ${p.rebuild ? "**rebuild**" : "keep"} | ${why} | ${p.currentAmi ? code(p.currentAmi) : "—"} |`;
  });
  const graph = ["```mermaid", "graph LR"];
  for (const p of plans) {
    const node = `${nodeId(p.stage)}["${p.stage}"]`;
    graph.push(p.parent === undefined ? `  ${node}` : `  ${nodeId(p.parent)} --> ${node}`);
  }
  const rebuilt = plans.filter((p) => p.rebuild).map((p) => nodeId(p.stage));
  graph.push("  classDef rebuild fill:#ffe3e3,stroke:#d1242f,stroke-width:2px");
  if (rebuilt.length > 0) graph.push(`  class ${rebuilt.join(",")} rebuild`);
  graph.push("```");
  return [
    `### Image rebuild plan: stack \`${context.stack}\``,
    "",
    `${countLine(plans)} (compared with ${context.stateSource}).`,
    "",
    "| Stage | Parent | Action | Why | Current AMI |",
    "|---|---|---|---|---|",
    ...rows,
    "",
    ...(context.blockers?.length ? [`**${BLOCKERS_HEADING}**`, "", ...context.blockers.map((b) => `- ${describeProblem(b)}`), ""] : []),
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
  try {
    const config = loadStackConfigFile(request.root, request.stack);
    const planned = planStackInputs(config, request.root);
    blockers = stackPreflight(stackStages(config, request.root), request.root, request.env);
    const loaded = loadRecorded(request);
    plans = rebuildPlan(planned, loaded.recorded, config.region);
    source = loaded.source;
  } catch (error) {
    if (!(error instanceof JiraImagesError)) throw error;
    io.stderr(`${error.message}\n`);
    return 1;
  }
  const context = { stack: request.stack, stateSource: source, blockers };
  io.stdout(request.format === "markdown" ? renderMarkdown(plans, context) : renderText(plans, context));
  return 0;
}
