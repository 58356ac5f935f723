import { lstatSync, readdirSync, statSync } from "node:fs";
import { join, posix } from "node:path";
import { JiraImagesError } from "./errors.ts";
import { LFS_POINTER_MAX_BYTES, readLfsPointerSync } from "./lfs.ts";
import { SSH_CIDRS_ENV, SSH_CIDRS_FIX, builderCidrsValueProblems } from "./build-access.ts";
import { installerPinProblem, readInstallerPins } from "./installer-checksums.ts";
import type { StageDefinition } from "./stages.ts";

/**
 * One thing that would make a build fail for sure, found before anything is declared. `code` is
 * the stage runner's code for the same problem, so a user meets one name for it wherever it is
 * caught.
 */
export interface PreflightProblem {
  code:
    | "REQUIRED_FILE_MISSING"
    | "REQUIRED_FILE_EMPTY"
    | "LFS_POINTER"
    | "VAR_FILE_MISSING"
    | "SSH_CIDRS_INVALID"
    | "INSTALLER_NOT_PINNED"
    | "INSTALLER_CHECKSUM_MISMATCH";
  /** The file (project-relative) or setting at fault. */
  subject: string;
  /** Stages that need it; empty for a setting every build needs. */
  stages: string[];
  problem: string;
  fix: string;
}

const LFS_FIX = "run `git lfs pull` (after `git lfs install` once) to fetch the real file";

/** What a file's `stat` says, or null when the path resolves to nothing (missing, dangling link, loop). */
function statOrNull(path: string) {
  try {
    return statSync(path, { throwIfNoEntry: false }) ?? null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ELOOP") return null;
    throw error;
  }
}

function isPointer(absPath: string, size: number): boolean {
  return size > 0 && size < LFS_POINTER_MAX_BYTES && readLfsPointerSync(absPath) !== null;
}

function requiredFileProblem(stage: StageDefinition, file: string, projectRoot: string): PreflightProblem | undefined {
  const source = stage.installerSource ? `download ${stage.installerSource}, ` : "";
  const addIt =
    `${source}copy it to ${file} and commit it with git-lfs (README: Installers (git-lfs)); ` +
    "if it is committed already, run `git lfs pull`";
  const info = statOrNull(join(projectRoot, file));
  const base = { subject: file, stages: [stage.name] };
  if (!info?.isFile()) return { ...base, code: "REQUIRED_FILE_MISSING", problem: "does not exist (a fresh clone has no installers)", fix: addIt };
  if (info.size === 0) return { ...base, code: "REQUIRED_FILE_EMPTY", problem: "is empty", fix: addIt };
  if (isPointer(join(projectRoot, file), info.size)) {
    return { ...base, code: "LFS_POINTER", problem: "is a git-lfs pointer, not the file itself", fix: LFS_FIX };
  }
  return undefined;
}

function varFileProblem(stage: StageDefinition, file: string, projectRoot: string): PreflightProblem | undefined {
  const info = statOrNull(join(projectRoot, file));
  const base = { subject: file, stages: [stage.name] };
  if (!info?.isFile()) {
    return { ...base, code: "VAR_FILE_MISSING", problem: "does not exist", fix: "create it (README: Adding an environment) or correct the stack's environment" };
  }
  if (isPointer(join(projectRoot, file), info.size)) {
    return { ...base, code: "LFS_POINTER", problem: "is a git-lfs pointer, not the file itself", fix: LFS_FIX };
  }
  return undefined;
}

const SKIPPED_DIRS = new Set([".git", "node_modules"]);

/**
 * Project-relative paths of the git-lfs pointers under `rel` (a file or a folder). Links to
 * folders are not followed, so that a link loop cannot hang the check; only small files are opened.
 */
function pointersUnder(projectRoot: string, rel: string): string[] {
  const abs = join(projectRoot, rel);
  const link = lstatSync(abs, { throwIfNoEntry: false });
  if (!link) return [];
  if (link.isDirectory()) {
    return readdirSync(abs)
      .filter((entry) => !SKIPPED_DIRS.has(entry))
      .sort()
      .flatMap((entry) => pointersUnder(projectRoot, posix.join(rel, entry)));
  }
  const info = link.isSymbolicLink() ? statOrNull(abs) : link;
  return info?.isFile() && isPointer(abs, info.size) ? [rel] : [];
}

/**
 * Everything about a stack's stages that would fail a build for sure, checked on the files under
 * `projectRoot` and the environment: required files (present, non-empty, not a git-lfs pointer,
 * pinned in packer/files/SHA256SUMS and matching the pin), var files, pointers among the files uploaded to the build instance, and who may reach the build
 * instance over SSH. Every problem, not the first; a problem shared by stages is listed once.
 */
export function stackPreflight(stages: readonly StageDefinition[], projectRoot: string, env: NodeJS.ProcessEnv): PreflightProblem[] {
  const found = new Map<string, PreflightProblem>();
  const add = (problem: PreflightProblem | undefined) => {
    if (problem === undefined) return;
    const key = `${problem.code}\0${problem.subject}`;
    const seen = found.get(key);
    if (seen) seen.stages.push(...problem.stages.filter((s) => !seen.stages.includes(s)));
    else found.set(key, problem);
  };
  const pins = readInstallerPins(projectRoot);
  for (const stage of stages) {
    for (const file of stage.installers) {
      add(requiredFileProblem(stage, file, projectRoot));
      const pin = installerPinProblem(projectRoot, file, pins);
      if (pin) add({ ...pin, subject: file, stages: [stage.name] });
    }
    for (const file of stage.varFiles) add(varFileProblem(stage, file, projectRoot));
    for (const input of [...stage.workspace, ...stage.scanInputs]) {
      for (const pointer of pointersUnder(projectRoot, input)) {
        add({ code: "LFS_POINTER", subject: pointer, stages: [stage.name], problem: "is a git-lfs pointer, not the file itself", fix: LFS_FIX });
      }
    }
  }
  for (const problem of builderCidrsValueProblems(env[SSH_CIDRS_ENV])) {
    found.set(`SSH\0${problem}`, { code: "SSH_CIDRS_INVALID", subject: SSH_CIDRS_ENV, stages: [], problem, fix: SSH_CIDRS_FIX });
  }
  return [...found.values()];
}

/** One line: the code, the file or setting, the stages that need it, what is wrong and the fix. */
export function describeProblem(p: PreflightProblem): string {
  const stages = p.stages.length === 0 ? "" : ` (stage${p.stages.length > 1 ? "s" : ""} ${p.stages.join(", ")})`;
  return `${p.code} ${p.subject}${stages}: ${p.problem}; ${p.fix}`;
}

/** The one error an `up` stops with, before any resource is declared. */
export function preflightError(stack: string, problems: readonly PreflightProblem[]): JiraImagesError {
  const count = problems.length === 1 ? "1 problem stops" : `${problems.length} problems stop`;
  return new JiraImagesError(
    "PREFLIGHT_FAILED",
    `stack ${stack}: ${count} the build before anything is built or launched:\n${problems.map((p) => `  ${describeProblem(p)}`).join("\n")}`,
  );
}
