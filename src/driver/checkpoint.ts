import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { gunzipSync } from "node:zlib";
import { JiraImagesError } from "../errors.ts";
import { stageOfCommandUrn } from "../stages.ts";

/** What the last `pulumi up` of a stack recorded for one stage's build command. */
export interface RecordedStage {
  /** The command's `triggers` as stored in state (`name=value` entries). */
  triggers: string[];
  /** The runner's one-line stdout, when the build succeeded. */
  stdout?: string;
}

function fail(file: string, why: string): never {
  throw new JiraImagesError("pipeline-state", `${file}: ${why}; it is not a Pulumi checkpoint this tool can read`);
}

/**
 * The stage build commands recorded in a file backend's checkpoint (`pulumi stack export`
 * format: `{version, checkpoint: {latest: {resources: [...]}}}`), keyed by stage name.
 */
export function recordedStages(checkpoint: unknown, file: string): Map<string, RecordedStage> {
  const root = checkpoint as { version?: unknown; checkpoint?: { latest?: { resources?: unknown } | null } } | null;
  if (typeof root !== "object" || root === null || typeof root.version !== "number") fail(file, "no version");
  const resources = root.checkpoint?.latest?.resources ?? [];
  if (!Array.isArray(resources)) fail(file, "latest.resources is not a list");
  const stages = new Map<string, RecordedStage>();
  for (const resource of resources as Array<Record<string, unknown>>) {
    // A replaced command whose delete has not run yet stays in the checkpoint under the same URN,
    // marked `delete: true`; its triggers are the old ones.
    if (resource.type !== "command:local:Command" || typeof resource.urn !== "string" || resource.delete === true) continue;
    const name = stageOfCommandUrn(resource.urn);
    if (name === undefined) continue;
    const inputs = (resource.inputs ?? {}) as { triggers?: unknown };
    const outputs = (resource.outputs ?? {}) as { stdout?: unknown };
    const triggers = Array.isArray(inputs.triggers) ? inputs.triggers.filter((t): t is string => typeof t === "string") : [];
    stages.set(name, { triggers, ...(typeof outputs.stdout === "string" ? { stdout: outputs.stdout } : {}) });
  }
  return stages;
}

/** Where a self-managed file backend keeps its state, or undefined for any other backend. */
export function fileBackendDir(url: string, projectRoot: string): string | undefined {
  if (!url.startsWith("file://")) return undefined;
  const path = url.slice("file://".length);
  if (path === "~" || path.startsWith("~/")) return join(homedir(), path.slice(1));
  return isAbsolute(path) ? path : resolve(projectRoot, path);
}

/**
 * The stack's checkpoint file in a file backend: the project-scoped layout
 * (`.pulumi/stacks/<project>/<stack>.json`, possibly gzipped) or the legacy one.
 */
export function checkpointFile(backendDir: string, project: string, stack: string): string | undefined {
  const stacks = join(backendDir, ".pulumi", "stacks");
  const candidates = [join(stacks, project, `${stack}.json`), join(stacks, `${stack}.json`)];
  return candidates.flatMap((file) => [file, `${file}.gz`]).find((file) => existsSync(file));
}

export function readCheckpoint(file: string): Map<string, RecordedStage> {
  const bytes = readFileSync(file);
  let json: unknown;
  try {
    json = JSON.parse((file.endsWith(".gz") ? gunzipSync(bytes) : bytes).toString("utf8"));
  } catch (error) {
    fail(file, `not JSON (${(error as Error).message})`);
  }
  return recordedStages(json, file);
}
