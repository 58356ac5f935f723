import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readlinkSync, statSync } from "node:fs";
import { join, posix } from "node:path";
import { contentSha256Sync } from "./lfs.ts";
import { installerSha256 } from "./installer-hash.ts";
import { imageTestFiles } from "./image-tests.ts";
import type { StageDefinition, VarValue } from "./stages.ts";
import type { StackConfig } from "./config.ts";
import { stackStages } from "../stages/index.ts";

/**
 * Named inputs of a stage, in the order they appear in the command's `triggers`. Any change
 * replaces the stage's command (= rebuilds the image); `preview --diff` shows the name.
 */
const TRIGGER_NAMES = ["template", "workspace", "installers", "vars", "tests", "parentAmi"] as const;
export type TriggerName = (typeof TRIGGER_NAMES)[number];
export type ContentTriggerName = Exclude<TriggerName, "parentAmi">;
/** The triggers hashed from files and vars: known before any build runs, and offline. */
export const CONTENT_TRIGGER_NAMES = TRIGGER_NAMES.filter((name): name is ContentTriggerName => name !== "parentAmi");

/** `parentAmi` of a root stage, whose source is the OS image named in its vars. */
export const NO_PARENT = "none";
/** Stand-in for a parent AMI that is not known yet (offline plans, previews). */
export const PARENT_AMI_UNKNOWN = "<parent-ami>";
/** Hash of a path that does not exist (e.g. an installer not pulled yet; the runner's preflight stops that build). */
export const MISSING = "missing";

export interface StageInputs {
  readonly stage: string;
  readonly parent: string | undefined;
  /** Content hashes, `sha256:<hex>`, of what the stage builds from (the parent AMI aside). */
  readonly hashes: Readonly<Record<ContentTriggerName, string>>;
  /**
   * One hash of `hashes` and of the parent stage's `inputsHash`: passed to Packer as `inputs_hash`
   * (image tag), computable offline. It changes with any content input of the stage or of any
   * stage above it, so equal tags mean images built from the same files and settings all the way up.
   */
  readonly inputsHash: string;
}

const sha256 = () => createHash("sha256");

/** Content hash of one file, `sha256:<hex>` (a git-lfs pointer counts as the file it stands for). */
export function fileContentHash(absPath: string): string {
  return `sha256:${contentSha256Sync(absPath)}`;
}

/** Files under `rel` (a file or a folder), as sorted project-relative paths with `/`. */
function listFiles(projectRoot: string, rel: string, include: (path: string) => boolean): string[] | null {
  const stat = lstatSync(join(projectRoot, rel), { throwIfNoEntry: false });
  if (!stat) return null;
  if (!stat.isDirectory()) return include(rel) ? [rel] : [];
  const out: string[] = [];
  for (const entry of readdirSync(join(projectRoot, rel)).sort()) {
    out.push(...(listFiles(projectRoot, posix.join(rel, entry), include) ?? []));
  }
  return out;
}

/** What a symlink that resolves to nothing (missing target, or a loop) hashes as, with its target. */
export const DANGLING_SYMLINK = "dangling-symlink";

function resolvedStat(absPath: string) {
  try {
    return statSync(absPath, { throwIfNoEntry: false }) ?? null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP") return null;
    throw error;
  }
}

/**
 * A listed entry's hash: a symlink to a file hashes as the file it points to, because that is
 * what Packer reads (a stage folder links in `packer/common/*`, and editing the shared file must
 * change every stage's trigger). A symlink to a folder is not followed, so that a link loop
 * cannot hang the hash; it counts by its target path, as does a dangling one.
 */
function entryHash(absPath: string, hashFile: (absPath: string) => string): string {
  if (!lstatSync(absPath).isSymbolicLink()) return hashFile(absPath);
  const target = resolvedStat(absPath);
  if (target === null) return `${DANGLING_SYMLINK}:${readlinkSync(absPath)}`;
  return target.isFile() ? hashFile(absPath) : `symlink:${readlinkSync(absPath)}`;
}

/**
 * One hash over files and folders: sorted relative paths and content hashes, no mtimes or
 * modes, so every checkout of the same commit gets the same value. A missing path counts as
 * `missing` (it becomes a different hash once the path appears).
 */
export function treeHash(
  projectRoot: string,
  paths: readonly string[],
  include: (path: string) => boolean = () => true,
  hashFile: (absPath: string) => string = fileContentHash,
): string {
  const hash = sha256();
  for (const rel of [...paths].map((p) => posix.normalize(p)).sort()) {
    const files = listFiles(projectRoot, rel, include);
    if (files === null) {
      hash.update(`${rel}\0${MISSING}\n`);
      continue;
    }
    for (const file of files.sort()) hash.update(`${file}\0${entryHash(join(projectRoot, file), hashFile)}\n`);
  }
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Var files (`*.pkrvars.hcl`) in a template folder are passed explicitly by the stages that use
 * them and hashed under `vars`, so that editing prod's var file does not rebuild dev's image.
 * Packer loads `*.auto.pkrvars.*` by itself: those count as template.
 */
function isTemplateFile(path: string): boolean {
  return !/\.pkrvars\.(hcl|json)$/.test(path) || /\.auto\.pkrvars\.(hcl|json)$/.test(path);
}

function canonicalVars(vars: Readonly<Record<string, VarValue>>): string {
  return JSON.stringify(Object.keys(vars).sort().map((k) => [k, vars[k]]));
}

/**
 * The named content hashes of one stage, read from the files under `projectRoot`, and its
 * `inputsHash` (`parentInputsHash`: the parent stage's, for a child stage). Pure but for reading files.
 */
export function stageInputs(stage: StageDefinition, projectRoot: string, parentInputsHash?: string): StageInputs {
  const hashes: Record<ContentTriggerName, string> = {
    template: treeHash(projectRoot, [stage.template], isTemplateFile),
    workspace: treeHash(projectRoot, stage.workspace),
    // Installers can be gigabytes: hashed through git's index or the stat-keyed cache (src/installer-hash.ts).
    installers: treeHash(projectRoot, stage.installers, () => true, (abs) => `sha256:${installerSha256(projectRoot, abs)}`),
    vars: `sha256:${sha256()
      .update(canonicalVars(stage.vars))
      .update("\0")
      .update(treeHash(projectRoot, stage.varFiles))
      .digest("hex")}`,
    // The runner and the stage's suites: a changed check rebuilds the images that run it.
    tests: treeHash(projectRoot, imageTestFiles(stage.tests ?? [])),
  };
  const inputsHash = `sha256:${sha256()
    .update(CONTENT_TRIGGER_NAMES.map((k) => `${k}=${hashes[k]}`).join("\n"))
    .update(`\nparent=${parentInputsHash ?? NO_PARENT}`)
    .digest("hex")}`;
  return { stage: stage.name, parent: stage.parent, hashes, inputsHash };
}

/**
 * The `triggers` of a stage's command: `name=value` strings, so that a preview diff reads e.g.
 * `triggers[1]: "workspace=sha256:1f…" => "workspace=sha256:9c…"`.
 */
export function triggerEntries(inputs: StageInputs, parentAmi: string): string[] {
  return [...contentTriggers(inputs), parentAmiTrigger(parentAmi)];
}

/** The content trigger entries (CONTENT_TRIGGER_NAMES, all but the last): known before any build runs. */
export function contentTriggers(inputs: StageInputs): string[] {
  return CONTENT_TRIGGER_NAMES.map((name) => `${name}=${inputs.hashes[name]}`);
}

/** The last trigger entry; a separate element so that an unknown parent AMI leaves the others readable. */
export function parentAmiTrigger(parentAmi: string): string {
  return `parentAmi=${parentAmi}`;
}

/**
 * The extra trigger of a root stage whose OS image is resolved at preview time (resolveSourceAmi):
 * a newly published image changes it, which rebuilds the stage and so every stage below it.
 */
export const SOURCE_IMAGE_TRIGGER = "sourceImage";

export function sourceImageTrigger(ami: string): string {
  return `${SOURCE_IMAGE_TRIGGER}=${ami}`;
}

export interface PlannedStage extends StageInputs {
  /** Trigger entries with `parentAmi=<parent-ami>` (unknown offline) or `parentAmi=none` for a root stage. */
  readonly triggers: readonly string[];
}

/**
 * Every stage of a stack with its named input hashes, parents first, computed without Pulumi
 * from the stack config and the files under `projectRoot` (e.g. for an offline rebuild plan:
 * compare `inputsHash` with the `InputsHash` tag of the current image). The parent AMI is not
 * known here: a stage also rebuilds whenever its parent does.
 */
export function planStackInputs(config: StackConfig, projectRoot: string): PlannedStage[] {
  const byStage = new Map<string, string>();
  return stackStages(config, projectRoot).map((stage) => {
    const inputs = stageInputs(stage, projectRoot, stage.parent === undefined ? undefined : byStage.get(stage.parent));
    byStage.set(stage.name, inputs.inputsHash);
    return { ...inputs, triggers: triggerEntries(inputs, stage.parent === undefined ? NO_PARENT : PARENT_AMI_UNKNOWN) };
  });
}
