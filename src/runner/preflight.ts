import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { JiraImagesError } from "../errors.ts";
import { SSH_CIDRS_ENV, SSH_CIDRS_FIX, SSH_CIDRS_VARIABLE, checkBuilderCidrs } from "../build-access.ts";
import { LFS_POINTER_MAX_BYTES, readLfsPointer, type LfsPointer } from "../lfs.ts";
import type { RunnerArgs } from "./args.ts";
import { containsCredential, MIN_SECRET_LENGTH, secretVarEnvName } from "./redact.ts";

/** What the build needs to know about the template, found before any money is spent. */
export interface Template {
  /** What `packer build` gets: the directory, or a legacy JSON template file. */
  buildPath: string;
  /** The directory holding the template files. */
  dir: string;
  /** HCL2 / JSON template files that Packer will load. */
  files: string[];
  /** The template declares `variable "manifest_path"`, so the runner passes a per-run path. */
  declaresManifestPath: boolean;
  /** The template declares `variable "run_id"`, so the runner passes its run id (the resources' run tag). */
  declaresRunId: boolean;
  /** The template declares `variable "ssh_source_cidrs"`, whose value the runner checks first. */
  declaresSshSourceCidrs: boolean;
  /** Directory whose files hold a `required_plugins` block (the template dir or its parent). */
  requiredPluginsDir?: string;
  /** The `required_plugins` block sits in the template dir itself (Packer < 1.7 cannot load it). */
  requiredPluginsInTemplate: boolean;
  /** `packer { required_version = "..." }` of the template dir or, failing that, of its parent. */
  requiredVersion?: { constraint: string; file: string };
}

function fail(code: string, message: string): never {
  throw new JiraImagesError(code, message);
}

function display(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel === "" ? "." : rel.startsWith("..") ? path : rel;
}

/** What `path` resolves to, or null when it resolves to nothing (missing, or a symlink loop). */
async function statOrNull(path: string) {
  try {
    return await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ELOOP") return null;
    throw error;
  }
}

const HCL_TEMPLATE = /\.pkr\.hcl$/;
const JSON_HCL_TEMPLATE = /\.pkr\.json$/;

/**
 * The template files Packer loads from `dir`, symlinks to files included: the stage folders load
 * the shared `packer/common/*` files that way. A dangling link is left to Packer to report.
 */
async function templateFilesIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const named = entries.filter((e) => HCL_TEMPLATE.test(e.name) || JSON_HCL_TEMPLATE.test(e.name));
  const files = await Promise.all(
    named.map(async (e) => {
      const path = join(dir, e.name);
      if (e.isFile()) return path;
      return e.isSymbolicLink() && (await statOrNull(path))?.isFile() ? path : null;
    }),
  );
  return files.filter((f): f is string => f !== null).sort();
}

/** HCL has no stable parser in Node; a declaration is one line, so a line scan suffices (comments excluded). */
function hclDeclaresVariable(text: string, name: string): boolean {
  const pattern = new RegExp(`^\\s*variable\\s+"${name}"\\s*\\{`, "m");
  return pattern.test(text);
}

function hclHasRequiredPlugins(text: string): boolean {
  return /^\s*required_plugins\s*\{/m.test(text);
}

function jsonDeclaresVariable(text: string, name: string): boolean {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // Packer reports a syntax error itself, with its position; no need to guess here.
    return false;
  }
  if (typeof doc !== "object" || doc === null) return false;
  const record = doc as Record<string, unknown>;
  // `variable` (HCL2 JSON syntax) or `variables` (legacy JSON templates).
  return [record["variable"], record["variables"]].some(
    (block) => typeof block === "object" && block !== null && name in (block as object),
  );
}

const REQUIRED_VERSION = /^\s*required_version\s*=\s*"([^"]*)"/m;

async function hclRequiredVersion(dir: string): Promise<{ constraint: string; file: string } | undefined> {
  for (const file of (await templateFilesIn(dir)).filter((f) => HCL_TEMPLATE.test(f))) {
    const constraint = REQUIRED_VERSION.exec(await readFile(file, "utf8"))?.[1];
    if (constraint !== undefined) return { constraint, file };
  }
  return undefined;
}

async function hclFilesHaveRequiredPlugins(dir: string): Promise<boolean> {
  const files = (await templateFilesIn(dir)).filter((f) => HCL_TEMPLATE.test(f));
  for (const file of files) {
    if (hclHasRequiredPlugins(await readFile(file, "utf8"))) return true;
  }
  return false;
}

export async function inspectTemplate(templateArg: string, cwd: string): Promise<Template> {
  const path = resolve(cwd, templateArg);
  const info = await statOrNull(path);
  if (!info) fail("TEMPLATE_NOT_FOUND", `template ${templateArg} does not exist`);
  let dir: string;
  let files: string[];
  if (info.isDirectory()) {
    dir = path;
    files = await templateFilesIn(dir);
    if (files.length === 0) {
      fail("TEMPLATE_EMPTY", `template directory ${templateArg} holds no *.pkr.hcl or *.pkr.json file`);
    }
  } else if (info.isFile() && path.endsWith(".json")) {
    dir = dirname(path);
    files = [path];
  } else {
    fail("TEMPLATE_NOT_FOUND", `template ${templateArg} is neither a directory nor a JSON template file`);
  }
  let declaresManifestPath = false;
  let declaresRunId = false;
  let declaresSshSourceCidrs = false;
  let requiredPluginsInTemplate = false;
  for (const file of files) {
    const text = await readFile(file, "utf8");
    if (HCL_TEMPLATE.test(file)) {
      declaresManifestPath ||= hclDeclaresVariable(text, "manifest_path");
      declaresRunId ||= hclDeclaresVariable(text, "run_id");
      declaresSshSourceCidrs ||= hclDeclaresVariable(text, SSH_CIDRS_VARIABLE);
      requiredPluginsInTemplate ||= hclHasRequiredPlugins(text);
    } else {
      declaresManifestPath ||= jsonDeclaresVariable(text, "manifest_path");
      declaresRunId ||= jsonDeclaresVariable(text, "run_id");
      declaresSshSourceCidrs ||= jsonDeclaresVariable(text, SSH_CIDRS_VARIABLE);
    }
  }
  let requiredPluginsDir: string | undefined;
  if (requiredPluginsInTemplate) requiredPluginsDir = dir;
  else if (await hclFilesHaveRequiredPlugins(dirname(dir))) requiredPluginsDir = dirname(dir);
  const requiredVersion = (await hclRequiredVersion(dir)) ?? (await hclRequiredVersion(dirname(dir)));
  return {
    buildPath: path,
    dir,
    files,
    declaresManifestPath,
    declaresRunId,
    declaresSshSourceCidrs,
    requiredPluginsInTemplate,
    ...(requiredPluginsDir !== undefined ? { requiredPluginsDir } : {}),
    ...(requiredVersion !== undefined ? { requiredVersion } : {}),
  };
}

export interface FoundPointer {
  path: string;
  pointer: LfsPointer;
}

/** The pointer a file of `size` bytes is, if any: only a file smaller than a pointer's maximum is opened. */
async function pointerIn(path: string, size: number): Promise<LfsPointer | null> {
  return size > 0 && size < LFS_POINTER_MAX_BYTES ? readLfsPointer(path) : null;
}

/** Directories that never hold build inputs and can be huge. */
const SKIPPED_DIRS = new Set([".git", "node_modules"]);

/** Every git-lfs pointer file under `root` (a file or a directory); only small files are opened. */
export async function findLfsPointers(root: string): Promise<FoundPointer[]> {
  const info = await stat(root);
  if (info.isFile()) {
    const pointer = await pointerIn(root, info.size);
    return pointer ? [{ path: root, pointer }] : [];
  }
  if (!info.isDirectory()) return [];
  const entries = await readdir(root, { withFileTypes: true });
  const found = await Promise.all(
    entries
      .filter((e) => !(e.isDirectory() && SKIPPED_DIRS.has(e.name)))
      // Symbolic links to directories are not followed: a link loop must not hang the preflight.
      .filter((e) => e.isDirectory() || e.isFile() || e.isSymbolicLink())
      .map(async (e) => {
        const path = join(root, e.name);
        if (e.isSymbolicLink()) {
          const target = await statOrNull(path);
          return target?.isFile() ? findLfsPointers(path) : [];
        }
        return findLfsPointers(path);
      }),
  );
  return found.flat().sort((a, b) => a.path.localeCompare(b.path));
}

function formatSize(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function describePointer(found: FoundPointer, cwd: string): string {
  return `${display(found.path, cwd)} is a git-lfs pointer (real file: ${formatSize(found.pointer.size)}, oid sha256:${found.pointer.oid.slice(0, 12)}…)`;
}

async function checkRequired(file: string, cwd: string): Promise<void> {
  const path = resolve(cwd, file);
  const shown = display(path, cwd);
  const howToAdd =
    `add it with \`git lfs track "${shown}"\` (once, commits .gitattributes), copy the file there and commit it, ` +
    "or fetch it with `git lfs pull` if it is already committed";
  const info = await statOrNull(path);
  if (!info) fail("REQUIRED_FILE_MISSING", `required file ${shown} does not exist; ${howToAdd}`);
  if (!info.isFile()) fail("REQUIRED_FILE_MISSING", `required file ${shown} is not a regular file; ${howToAdd}`);
  if (info.size === 0) fail("REQUIRED_FILE_EMPTY", `required file ${shown} is empty; ${howToAdd}`);
  const pointer = await pointerIn(path, info.size);
  if (pointer) {
    fail(
      "LFS_POINTER",
      `${describePointer({ path, pointer }, cwd)}, not the file itself; run \`git lfs pull\` ` +
        "(after `git lfs install` once) to fetch it",
    );
  }
}

const CREDENTIAL_VAR_NAME = /(^|_)(access_key|secret_key|secret_access_key|session_token|security_token)$/i;

function checkVars(vars: RunnerArgs["vars"]): void {
  for (const [key, value] of vars) {
    // `key=value` holds every credential the value holds, and also a named secret split across the two.
    if (CREDENTIAL_VAR_NAME.test(key) || containsCredential(`${key}=${value}`)) {
      fail(
        "CREDENTIAL_IN_VAR",
        `--var ${key}=… looks like an AWS credential; credentials never go into template variables, ` +
          "use the standard AWS credential chain (environment, profile, instance or OIDC role)",
      );
    }
  }
}

/**
 * A secret variable comes from the environment only: on the command line its value would be in
 * Pulumi's state, and in a var file the runner could not know it to redact it.
 */
function checkSecretVars(args: RunnerArgs, env: NodeJS.ProcessEnv): void {
  for (const name of args.secretVars) {
    const envName = secretVarEnvName(name);
    if (args.vars.some(([key]) => key === name)) {
      fail(
        "SECRET_VAR_INVALID",
        `--secret-var ${name} is also given as --var ${name}=…, which puts its value on the command line (and in Pulumi's state); ` +
          `drop the --var and set ${envName} in the environment`,
      );
    }
    const value = env[envName];
    if (value === undefined || value === "") {
      fail("SECRET_VAR_INVALID", `--secret-var ${name}: ${envName} is not set; set the secret in the environment as ${envName}`);
    }
    if (value.length < MIN_SECRET_LENGTH) {
      fail(
        "SECRET_VAR_INVALID",
        `--secret-var ${name}: the value of ${envName} is shorter than ${MIN_SECRET_LENGTH} characters, too short to redact ` +
          "by value without mangling the log; use a longer secret",
      );
    }
  }
}

async function checkVarFile(file: string, cwd: string): Promise<string> {
  const path = resolve(cwd, file);
  const info = await statOrNull(path);
  if (!info?.isFile()) fail("VAR_FILE_MISSING", `--var-file ${file} does not exist`);
  if (containsCredential(await readFile(path, "utf8"))) {
    fail(
      "CREDENTIAL_IN_VAR",
      `--var-file ${display(path, cwd)} holds what looks like an AWS credential; use the standard AWS credential chain instead`,
    );
  }
  return path;
}

/**
 * Who may reach the build instance over SSH, as Packer will get it (a `--var` wins over the
 * environment): checked here because Packer reports it only after `packer init`, and a value
 * that opens port 22 to much of the internet must never reach a build.
 */
function checkSshSourceCidrs(vars: RunnerArgs["vars"], env: NodeJS.ProcessEnv): void {
  const fromVar = vars.filter(([key]) => key === SSH_CIDRS_VARIABLE).at(-1);
  const problems = fromVar ? checkBuilderCidrs(fromVar[1], `--var ${SSH_CIDRS_VARIABLE}`) : checkBuilderCidrs(env[SSH_CIDRS_ENV]);
  if (problems.length > 0) fail("SSH_CIDRS_INVALID", `${problems.join("; ")}; set your own address: ${SSH_CIDRS_FIX}`);
}

export interface Preflight {
  template: Template;
  /** Absolute paths. */
  varFiles: string[];
}

/**
 * Everything that can be checked before `packer build` starts. Throws a `JiraImagesError` with a
 * stable code; the git-lfs check lists every pointer found, not just the first.
 */
export async function preflight(args: RunnerArgs, cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Preflight> {
  checkVars(args.vars);
  checkSecretVars(args, env);
  const template = await inspectTemplate(args.template, cwd);
  const varFiles: string[] = [];
  for (const file of args.varFiles) varFiles.push(await checkVarFile(file, cwd));
  for (const file of args.requires) await checkRequired(file, cwd);

  const roots = [template.buildPath, ...args.inputs.map((input) => resolve(cwd, input))];
  const pointers: FoundPointer[] = [];
  for (const root of roots) {
    if (!(await statOrNull(root))) fail("INPUT_NOT_FOUND", `--input ${display(root, cwd)} does not exist`);
    pointers.push(...(await findLfsPointers(root)));
  }
  if (pointers.length > 0) {
    const unique = [...new Map(pointers.map((p) => [p.path, p])).values()];
    const shown = unique.slice(0, 10).map((p) => describePointer(p, cwd));
    const more = unique.length > shown.length ? `; and ${unique.length - shown.length} more` : "";
    fail(
      "LFS_POINTER",
      `${shown.join("; ")}${more}. Packer would upload the pointer instead of the file: run \`git lfs pull\` ` +
        "(after `git lfs install` once) and try again",
    );
  }
  if (template.declaresSshSourceCidrs) checkSshSourceCidrs(args.vars, env);
  return { template, varFiles };
}
