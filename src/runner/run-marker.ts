import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

/**
 * A build's run id: the runner's start time (UTC, to the second) and 8 random hex digits, e.g.
 * `20261204T190804Z-1a2b3c4d`. Packer tags every resource of the build with it
 * (`jira-images:run-id`), the log file is `<run id>.log`, and the start time in it gives `sweep`
 * the build's age without any other record.
 */
export const RUN_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-[0-9a-f]{8}$/;

export function newRunId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `${stamp}-${randomBytes(4).toString("hex")}`;
}

/** When the run started, or undefined for a value that is not a run id. */
export function runIdStart(runId: string): Date | undefined {
  const m = RUN_ID.exec(runId);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Date.UTC rolls month 13 over into the next year: only a date that reads back the same is one.
  return date.getUTCMonth() === mo - 1 && date.getUTCDate() === d && date.getUTCHours() === h && date.getUTCMinutes() === mi ? date : undefined;
}

/** Suffix of the live-run marker next to the run's log file: `<log dir>/<run id>.run.json`. */
export const MARKER_SUFFIX = ".run.json";

const ProcessRefSchema = z.object({
  pid: z.number().int().positive(),
  /** `/proc/<pid>/stat` start time (clock ticks since boot): a reused pid is not the same process. */
  startTicks: z.string().optional(),
});
type ProcessRef = z.infer<typeof ProcessRefSchema>;

export const RunMarkerSchema = z.object({
  runId: z.string().regex(RUN_ID),
  stage: z.string().min(1),
  startedAt: z.string(),
  runner: ProcessRefSchema,
  packer: ProcessRefSchema.optional(),
});
export type RunMarker = z.infer<typeof RunMarkerSchema>;

function startTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces and parentheses): state is field 3, start time field 22.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function processRef(pid: number): ProcessRef {
  const ticks = startTicks(pid);
  return { pid, ...(ticks !== undefined ? { startTicks: ticks } : {}) };
}

/** The same process still runs (not a zombie, not another process under a reused pid). */
function running(ref: ProcessRef): boolean {
  try {
    process.kill(ref.pid, 0);
  } catch (error) {
    // EPERM: it exists under another user; only ESRCH says it is gone.
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
  }
  let stat: string;
  try {
    stat = readFileSync(`/proc/${ref.pid}/stat`, "utf8");
  } catch {
    // No procfs (macOS): existence is all there is to know.
    return true;
  }
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return false;
  return ref.startTicks === undefined || fields[19] === ref.startTicks;
}

/**
 * The marker a running build keeps next to its log: written before Packer starts, updated with
 * Packer's pid, removed when the runner ends (or, after a SIGKILL of the runner, by its watchdog
 * once Packer's cleanup is over). A marker whose processes are gone belongs to a dead build.
 */
export class LiveRunMarker {
  private marker: RunMarker;

  constructor(
    readonly path: string,
    runId: string,
    stage: string,
    startedAt: Date,
  ) {
    this.marker = { runId, stage, startedAt: startedAt.toISOString(), runner: processRef(process.pid) };
    this.write();
  }

  packerStarted(pid: number): void {
    this.marker = { ...this.marker, packer: processRef(pid) };
    this.write();
  }

  remove(): void {
    rmSync(this.path, { force: true });
  }

  private write(): void {
    writeFileSync(this.path, `${JSON.stringify(this.marker)}\n`, { mode: 0o600 });
  }
}

export function markerPath(logDir: string, runId: string): string {
  return join(logDir, `${runId}${MARKER_SUFFIX}`);
}

/** The run's runner or its Packer still runs. */
export function markerIsLive(marker: RunMarker): boolean {
  return running(marker.runner) || (marker.packer !== undefined && running(marker.packer));
}

/**
 * Run ids of the builds running on this machine: the markers under `logsRoot` (the stage log
 * folders, `.packer-logs/<stage>/`) whose runner or Packer is still alive. An unreadable marker
 * counts as live: sweeping a build that runs costs more than keeping a leftover one run longer.
 */
export function liveRunIds(logsRoot: string): Set<string> {
  const live = new Set<string>();
  let stages: string[];
  try {
    stages = readdirSync(logsRoot);
  } catch {
    return live;
  }
  for (const stage of stages) {
    let files: string[];
    try {
      files = readdirSync(join(logsRoot, stage)).filter((f) => f.endsWith(MARKER_SUFFIX));
    } catch {
      continue;
    }
    for (const file of files) {
      const runId = file.slice(0, -MARKER_SUFFIX.length);
      let parsed;
      try {
        parsed = RunMarkerSchema.safeParse(JSON.parse(readFileSync(join(logsRoot, stage, file), "utf8")));
      } catch {
        parsed = undefined;
      }
      if (parsed === undefined || !parsed.success || markerIsLive(parsed.data)) live.add(runId);
    }
  }
  return live;
}
