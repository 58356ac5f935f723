import type { EngineEvent, OpType, StepEventMetadata } from "@pulumi/pulumi/automation/index.js";
import { StageResultSchema, type StageResult } from "../runner/result.ts";
import { stageOfCommandUrn, urnResourceName } from "../stages.ts";

/** Every image stage is one `local.Command` running the stage runner (issue 3 contract). */
const STAGE_RESOURCE_TYPE = "command:local:Command";

export type DriverMode = "preview" | "up" | "destroy";
export type StageStatus = "planned" | "running" | "built" | "updated" | "unchanged" | "failed" | "deleting" | "deleted";

export interface StageProgress {
  urn: string;
  /** The resource name until the runner's result names the stage. */
  name: string;
  op: OpType;
  status: StageStatus;
  startedAt?: number;
  finishedAt?: number;
  /** Named triggers whose value changed (why the stage rebuilds). */
  changedInputs: string[];
  result?: StageResult;
  logFile?: string;
  /** stage-runner error lines already shown, so a failure does not repeat them. */
  shownErrors: Set<string>;
}

/** Steps that run the command's `create`: a Packer build. */
const BUILD_OPS: ReadonlySet<OpType> = new Set<OpType>(["create", "create-replacement"]);
const PULUMI_CANCELLING = /(\^C|SIGTERM) received; cancelling/;

/** Removes terminal colour codes and Pulumi's `<{%fg 1%}>` colour tags from event text. */
export function stripColors(text: string): string {
  // eslint-disable-next-line no-control-regex -- ESC is exactly what is being removed
  return text.replace(/\u001b\[[0-9;]*m/g, "").replace(/<\{%[^%]*%\}>/g, "");
}

/** The stage a command URN belongs to, or the URN's resource name for any other command. */
function stageNameFromUrn(urn: string): string {
  return stageOfCommandUrn(urn) ?? urnResourceName(urn);
}

export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

/**
 * Triggers as name → value. The program names each trigger (`"template=sha256:…"` or
 * `{template: "sha256:…"}`) so that a rebuild can say which input changed; anything unnamed is
 * reported by its position.
 */
export function namedTriggers(triggers: unknown): Map<string, string> {
  const named = new Map<string, string>();
  const items = Array.isArray(triggers) ? triggers : triggers !== undefined && triggers !== null ? [triggers] : [];
  items.forEach((item, index) => {
    if (typeof item === "string") {
      const eq = item.indexOf("=");
      if (eq > 0) named.set(item.slice(0, eq), item.slice(eq + 1));
      else named.set(`triggers[${index}]`, item);
    } else if (item !== null && typeof item === "object" && !Array.isArray(item)) {
      for (const [key, value] of Object.entries(item)) named.set(key, JSON.stringify(value));
    } else {
      named.set(`triggers[${index}]`, JSON.stringify(item));
    }
  });
  return named;
}

/** Names of the triggers that differ between two resource input sets (added and removed included). */
export function changedTriggerNames(oldTriggers: unknown, newTriggers: unknown): string[] {
  const before = namedTriggers(oldTriggers);
  const after = namedTriggers(newTriggers);
  const names = [...after.keys(), ...[...before.keys()].filter((key) => !after.has(key))];
  return names.filter((name) => before.get(name) !== after.get(name));
}

/**
 * The runner's one JSON line from a recorded command `stdout`, if it is one. Lenient, unlike the
 * program's parseStageStdout: a reader of old state shows "no AMI" rather than failing.
 */
export function stageResultOf(stdout: unknown): StageResult | undefined {
  if (typeof stdout !== "string") return undefined;
  const line = stdout.trim().split("\n").pop();
  if (!line) return undefined;
  try {
    const parsed = StageResultSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    // Not JSON (e.g. "[secret]" or an older stdout): the summary then shows no AMI, nothing more.
    return undefined;
  }
}

/** The Packer log path in runner/command output (the runner always names it on failure). */
export function findLogPath(text: string): string | undefined {
  const match =
    /(?:^|[\s"'(=:])((?:[^\s"'()]*\/)?\.packer-logs\/[^\s"'()]+)/m.exec(text) ??
    /\blog(?: ?file)?[:=]\s*([^\s"'()]+)/i.exec(text);
  return match?.[1]?.replace(/[.,;:]+$/, "");
}

/** The runner's own stderr lines (stable `stage-runner: [<stage>] ` prefix) inside a longer message. */
export function stageRunnerLines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => {
      const at = line.indexOf("stage-runner: ");
      return at >= 0 ? line.slice(at).trimEnd() : "";
    })
    .filter((line) => line.length > 0);
}

function outputsOf(state: StepEventMetadata["new"]): Record<string, unknown> | undefined {
  return state?.outputs as Record<string, unknown> | undefined;
}

/** Takes a recorded result; it names the stage, where the URN gives only the command's name. */
function adoptResult(stage: StageProgress, stdout: unknown): void {
  stage.result = stageResultOf(stdout);
  if (stage.result) stage.name = stage.result.stage;
}

/**
 * Turns Automation API engine events into short progress lines about the image stages and keeps
 * what the summary table needs. Pure apart from the injected clock, so tests feed it events.
 */
export class ProgressTracker {
  private readonly stages = new Map<string, StageProgress>();
  /** Set once the Pulumi CLI itself reported a SIGINT/SIGTERM (it is cancelling already). */
  pulumiCancelling = false;
  /** Error lines shown so far: when none were, the driver shows the CLI's stderr on failure. */
  errorsReported = 0;

  constructor(
    private readonly mode: DriverMode,
    private readonly now: () => number,
  ) {}

  rows(): StageProgress[] {
    return [...this.stages.values()];
  }

  handle(event: EngineEvent): string[] {
    if (event.stdoutEvent) return this.onStdout(event.stdoutEvent.message);
    if (event.diagnosticEvent) return this.onDiagnostic(event.diagnosticEvent);
    if (event.resourcePreEvent) return this.onPre(event.resourcePreEvent.metadata, event.resourcePreEvent.planning === true);
    if (event.resOutputsEvent) return this.onOutputs(event.resOutputsEvent.metadata, event.resOutputsEvent.planning === true);
    if (event.resOpFailedEvent) return this.onFailed(event.resOpFailedEvent.metadata);
    return [];
  }

  /** One line per stage whose Packer build is still running: the elapsed-time heartbeat. */
  tick(): string[] {
    return this.rows()
      .filter((stage) => stage.status === "running" && BUILD_OPS.has(stage.op) && stage.startedAt !== undefined)
      .map((stage) => `[${stage.name}] Packer running, ${formatDuration(this.now() - stage.startedAt!)}`);
  }

  /** The stage of a step about to run, with the step's op. */
  private stage(metadata: StepEventMetadata): StageProgress {
    let stage = this.stages.get(metadata.urn);
    if (stage) {
      stage.op = metadata.op;
    } else {
      stage = {
        urn: metadata.urn,
        name: stageNameFromUrn(metadata.urn),
        op: metadata.op,
        status: "planned",
        changedInputs: [],
        shownErrors: new Set(),
      };
      this.stages.set(metadata.urn, stage);
    }
    return stage;
  }

  private onStdout(message: string): string[] {
    if (!PULUMI_CANCELLING.test(message)) return [];
    this.pulumiCancelling = true;
    return [`pulumi: ${stripColors(message).trim().replace(/\s*\n\s*/g, " ")}`];
  }

  private onDiagnostic(diag: NonNullable<EngineEvent["diagnosticEvent"]>): string[] {
    const message = stripColors(diag.message).trim();
    const stage = diag.urn ? this.stages.get(diag.urn) : undefined;
    if (stage) {
      stage.logFile = findLogPath(message) ?? stage.logFile;
      if (diag.severity !== "error") return [];
      const lines = stageRunnerLines(message).filter((line) => !stage.shownErrors.has(line));
      for (const line of lines) stage.shownErrors.add(line);
      this.errorsReported++;
      return lines.length > 0 ? lines.map((line) => `[${stage.name}] ${line}`) : [`[${stage.name}] error: ${message}`];
    }
    if (diag.ephemeral) return [];
    if (diag.severity === "error") {
      this.errorsReported++;
      return [`error: ${message}`];
    }
    if (diag.severity === "warning") return [`warning: ${message}`];
    return [];
  }

  private onPre(metadata: StepEventMetadata, planning: boolean): string[] {
    if (metadata.type !== STAGE_RESOURCE_TYPE) return [];
    if (metadata.op === "update") {
      // Triggers replace the command, so an update never rebuilds: src/pipeline.ts makes the
      // command's `update` re-emit the previous result (a changed runner flag or checkout path).
      const stage = this.stage(metadata);
      adoptResult(stage, outputsOf(metadata.old)?.["stdout"]);
      if (planning || this.mode === "preview") {
        stage.status = "planned";
        return [`[${stage.name}] would update its settings (no rebuild)`];
      }
      stage.status = "running";
      stage.startedAt = this.now();
      return [];
    }
    if (BUILD_OPS.has(metadata.op)) {
      const stage = this.stage(metadata);
      stage.changedInputs =
        metadata.op === "create"
          ? []
          : changedTriggerNames(metadata.old?.inputs?.["triggers"], metadata.new?.inputs?.["triggers"]);
      const why = stage.op === "create" ? "new image" : `changed: ${stage.changedInputs.join(", ") || "inputs"}`;
      if (planning || this.mode === "preview") {
        stage.status = "planned";
        return [`[${stage.name}] would ${stage.op === "create" ? "build" : "rebuild"} (${why})`];
      }
      stage.status = "running";
      stage.startedAt = this.now();
      return [`[${stage.name}] Packer build started (${why})`];
    }
    if (metadata.op === "same") {
      const stage = this.stage(metadata);
      stage.status = "unchanged";
      adoptResult(stage, outputsOf(metadata.old)?.["stdout"] ?? outputsOf(metadata.new)?.["stdout"]);
      return [];
    }
    if (metadata.op === "delete") {
      const stage = this.stage(metadata);
      adoptResult(stage, outputsOf(metadata.old)?.["stdout"]);
      if (planning || this.mode === "preview") return [];
      stage.status = "deleting";
      stage.startedAt = this.now();
      return [`[${stage.name}] deleting`];
    }
    return [];
  }

  private onOutputs(metadata: StepEventMetadata, planning: boolean): string[] {
    if (metadata.type !== STAGE_RESOURCE_TYPE || planning || this.mode === "preview") return [];
    const stage = this.stages.get(metadata.urn);
    if (!stage) return [];
    if (metadata.op === "update" && stage.status === "running") {
      stage.status = "updated";
      stage.finishedAt = this.now();
      stage.result = stageResultOf(outputsOf(metadata.new)?.["stdout"]) ?? stage.result;
      return [];
    }
    if (BUILD_OPS.has(metadata.op) && stage.status === "running") {
      stage.status = "built";
      stage.finishedAt = this.now();
      stage.result = stageResultOf(outputsOf(metadata.new)?.["stdout"]);
      const took = formatDuration(stage.finishedAt - (stage.startedAt ?? stage.finishedAt));
      if (!stage.result) return [`[${stage.name}] done in ${took} (no stage result in its stdout)`];
      stage.name = stage.result.stage;
      stage.logFile = stage.result.logFile;
      return [`[${stage.name}] done: ${stage.result.amiId} in ${stage.result.region} after ${took}`];
    }
    if (metadata.op === "delete" && stage.status === "deleting") {
      stage.status = "deleted";
      stage.finishedAt = this.now();
      return [`[${stage.name}] deleted`];
    }
    return [];
  }

  private onFailed(metadata: StepEventMetadata): string[] {
    const stage = this.stages.get(metadata.urn);
    if (!stage) return [];
    stage.status = "failed";
    stage.finishedAt = this.now();
    this.errorsReported++;
    const took = formatDuration(stage.finishedAt - (stage.startedAt ?? stage.finishedAt));
    const log = stage.logFile ? `; Packer log: ${stage.logFile}` : "; no log path was reported";
    return [`[${stage.name}] FAILED after ${took}${log}`];
  }
}

function resultText(stage: StageProgress): string {
  const why = stage.changedInputs.join(", ") || "inputs changed";
  switch (stage.status) {
    case "planned":
      if (stage.op === "delete") return "would delete";
      if (stage.op === "update") return "would update (no rebuild)";
      return stage.op === "create" ? "would build (new)" : `would rebuild (${why})`;
    case "built":
      return stage.op === "create" ? "built" : `rebuilt (${why})`;
    case "updated":
      return "updated (no rebuild)";
    case "unchanged":
      return "unchanged";
    case "failed":
      return "FAILED";
    case "running":
    case "deleting":
      return "interrupted";
    case "deleted":
      return "deleted";
  }
}

/** The end-of-run table (plain text, aligned; empty string when no stage was involved). */
export function renderSummary(stages: readonly StageProgress[]): string {
  if (stages.length === 0) return "";
  const header = ["STAGE", "RESULT", "AMI", "REGION", "TIME", "LOG"];
  const rows = stages.map((stage) => [
    stage.result?.stage ?? stage.name,
    resultText(stage),
    stage.result?.amiId ?? "",
    stage.result?.region ?? "",
    stage.startedAt !== undefined && stage.finishedAt !== undefined ? formatDuration(stage.finishedAt - stage.startedAt) : "",
    stage.logFile ?? stage.result?.logFile ?? "",
  ]);
  const widths = header.map((title, col) => Math.max(title.length, ...rows.map((row) => row[col]!.length)));
  const line = (cells: string[]): string => cells.map((cell, col) => cell.padEnd(widths[col]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}
