import { closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { JiraImagesError } from "../errors.ts";
import { MachineReadableParser, type BuildStream } from "../machine-readable.ts";
import type { RunnerArgs } from "./args.ts";
import { describeImage, imagesLeftBehind, leftImagesAdvice, selectStageImage, validAmiPairs, type RegionAmi, type StageImage } from "./image.ts";
import { checkManifest, readManifest } from "./manifest.ts";
import { followFile, packerVersion, satisfiesConstraint, startPacker, versionAtLeast, type PackerExit, type PackerProcess } from "./packer.ts";
import { preflight, type Preflight } from "./preflight.ts";
import { signalGroup } from "./processes.ts";
import { CredentialScanner, redactFileInPlace, Redactor, SECRET_VARS_ENV } from "./redact.ts";
import { StageResultSchema, type StageResult, type StageTests } from "./result.ts";
import { IMAGE_TEST_VARS } from "../image-tests.ts";
import { LiveRunMarker, markerPath, newRunId } from "./run-marker.ts";

export const EXIT = {
  packerFailed: 1,
  usage: 2,
  timeout: 124,
} as const;

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (SIGNAL_NUMBERS[signal] ?? 1);
}

/** Where the runner's signals come from: the CLI wires the process's, tests may wire their own. */
export interface SignalSource {
  onSignal(listener: (signal: NodeJS.Signals) => void): void;
}

export interface RunnerIo {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Receives whole lines without their prefix; the caller prefixes them. */
  stderr: (line: string) => void;
  signals: SignalSource;
}

/** A failure with the lines that explain it (Packer's own errors, the log path). */
export class StageFailure extends Error {
  readonly exitCode: number;
  readonly details: string[];

  constructor(error: JiraImagesError, exitCode: number, details: string[] = []) {
    super(error.message, { cause: error });
    this.name = "StageFailure";
    this.exitCode = exitCode;
    this.details = details;
  }
}

const WATCHDOG = fileURLToPath(new URL("./watchdog.sh", import.meta.url));
const REDACT_LOG = fileURLToPath(new URL("./redact-log.ts", import.meta.url));
const TSX_LOADER = import.meta.resolve("tsx");

/**
 * Decoded Packer errors for the user, most specific first: the `ui,error` messages in order, or the
 * per-build `error` records, or whatever non-Packer output (a plugin crash) ended the log.
 */
export function packerErrorLines(stream: BuildStream, redactor: Redactor = new Redactor([])): string[] {
  const uiLines = stream.uiErrors.flatMap(nonBlankLines).map((line) => `packer: ${line.trimEnd()}`);
  let lines: string[];
  if (uiLines.length > 0) lines = uiLines;
  else if (stream.errors.length > 0) {
    lines = stream.errors.flatMap((e) => nonBlankLines(e.message).map((l) => `packer: ${e.target ? `${e.target}: ` : ""}${l}`));
  } else lines = stream.otherTail.map((line) => `packer output: ${line}`);
  return lines.map((line) => redactor.redact(line));
}

function nonBlankLines(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "");
}

function describeExit(exit: PackerExit): string {
  return exit.exitCode !== undefined ? `exited with status ${exit.exitCode}` : `was killed by ${exit.signal}`;
}

function cleanupOutcome(stream: BuildStream, exit: PackerExit): string {
  if (stream.cancelled) return "Packer cleaned up and reported its builds cancelled";
  return `Packer ${describeExit(exit)} without reporting a clean cancel; check the log for leftover resources`;
}

interface BuildRun {
  exit: PackerExit;
  stream: BuildStream;
  signal?: NodeJS.Signals;
  timedOut: boolean;
}

class Runner {
  private signal: NodeJS.Signals | undefined;
  private timedOut = false;
  private active: PackerProcess | undefined;
  private readonly started = Date.now();

  constructor(
    private readonly args: RunnerArgs,
    private readonly io: RunnerIo,
    private readonly redactor: Redactor,
  ) {
    io.signals.onSignal((signal) => this.onSignal(signal));
  }

  private onSignal(signal: NodeJS.Signals): void {
    const first = this.signal === undefined;
    this.signal ??= signal;
    if (this.active) {
      this.io.stderr(
        first
          ? `received ${signal}: interrupting Packer and waiting for its cleanup`
          : `received ${signal} again: still waiting for Packer's cleanup (a second interrupt does not stop it)`,
      );
      this.active.interrupt();
    }
  }

  private stopIfSignalled(logFile?: string): void {
    if (this.signal === undefined) return;
    throw new StageFailure(
      new JiraImagesError("INTERRUPTED", `received ${this.signal} before Packer started; nothing was built`),
      signalExitCode(this.signal),
      logFile ? [`log: ${logFile}`] : [],
    );
  }

  async run(): Promise<StageResult> {
    const { args, io } = this;
    const bin = io.env["PACKER_BIN"] || "packer";
    const pre = await preflight(args, io.cwd, io.env);
    // Off the critical path unless `packer init` depends on it: the version is only for lineage.
    const versionLookup = packerVersion(bin, io.env, io.cwd);
    versionLookup.catch(() => undefined);
    const required = pre.template.requiredVersion;
    if (required !== undefined) {
      const version = await versionLookup;
      if (!satisfiesConstraint(version, required.constraint)) {
        throw new JiraImagesError(
          "PACKER_TOO_OLD",
          `Packer ${version} does not satisfy required_version "${required.constraint}" of ${required.file}; ` +
            "install that Packer (https://developer.hashicorp.com/packer/install) and run again",
        );
      }
    }
    let initDir: string | undefined;
    if (pre.template.requiredPluginsDir !== undefined) {
      const version = await versionLookup;
      const canInit = versionAtLeast(version, "1.7.0");
      if (pre.template.requiredPluginsInTemplate && !canInit) {
        throw new JiraImagesError(
          "PACKER_TOO_OLD",
          `the template declares required_plugins, which Packer ${version} cannot load (needs >= 1.7); ` +
            "install a current Packer or keep required_plugins in a separate folder",
        );
      }
      if (canInit) initDir = pre.template.requiredPluginsDir;
    }
    this.stopIfSignalled();

    const logDir = resolve(io.cwd, args.logDir ?? join(".packer-logs", args.stage));
    mkdirSync(logDir, { recursive: true });
    const runId = newRunId(new Date(this.started));
    const logFile = join(logDir, `${runId}.log`);
    const manifestPath = pre.template.declaresManifestPath ? join(logDir, `${runId}.manifest.json`) : undefined;
    const logFd = openSync(logFile, "a", 0o600);
    // Tells `sweep` on this machine that the resources tagged with this run id belong to a live build.
    const marker = new LiveRunMarker(markerPath(logDir, runId), runId, this.args.stage, new Date(this.started));
    let timer: NodeJS.Timeout | undefined;
    try {
      io.stderr(`packer build started; log: ${logFile}`);
      if (args.timeoutSeconds !== undefined) {
        timer = setTimeout(() => this.onTimeout(), args.timeoutSeconds * 1000);
      }
      if (initDir !== undefined) await this.init(bin, initDir, logFd, logFile);
      this.stopIfSignalled(logFile);
      const runIdVar = pre.template.declaresRunId ? runId : undefined;
      const build = await this.build(bin, this.buildArgs(pre, manifestPath, runIdVar), logFd, logFile, marker);
      // A stage whose image exists is not failed for want of a version string.
      const packerVersionText = await versionLookup.catch(() => undefined);
      return await this.outcome(build, { logFile, manifestPath, packerVersion: packerVersionText, runId });
    } finally {
      if (timer) clearTimeout(timer);
      closeSync(logFd);
      marker.remove();
    }
  }

  private onTimeout(): void {
    this.timedOut = true;
    if (this.active) {
      this.io.stderr(`timed out after ${this.args.timeoutSeconds} s: interrupting Packer and waiting for its cleanup`);
      this.active.interrupt();
    }
  }

  private buildArgs(pre: Preflight, manifestPath: string | undefined, runId: string | undefined): string[] {
    const argv = ["build", "-machine-readable"];
    for (const [key, value] of this.args.vars) {
      // The runner owns manifest_path: a fresh file per run, so no earlier run's builds can leak in.
      if (manifestPath !== undefined && key === "manifest_path") continue;
      // And run_id: the tag that ties the build's resources to this run's live marker.
      if (runId !== undefined && key === "run_id") continue;
      argv.push("-var", `${key}=${value}`);
    }
    if (manifestPath !== undefined) argv.push("-var", `manifest_path=${manifestPath}`);
    if (runId !== undefined) argv.push("-var", `run_id=${runId}`);
    for (const file of pre.varFiles) argv.push("-var-file", file);
    argv.push(pre.template.buildPath);
    return argv;
  }

  private async init(bin: string, dir: string, logFd: number, logFile: string): Promise<void> {
    const init = startPacker(bin, ["init", dir], { logFd, env: this.io.env, cwd: this.io.cwd });
    this.active = init;
    const exit = await init.exited.finally(() => {
      this.active = undefined;
    });
    if (this.timedOut) {
      throw new StageFailure(
        new JiraImagesError("TIMEOUT", `timed out after ${this.args.timeoutSeconds} s during \`packer init\``),
        EXIT.timeout,
        [`log: ${logFile}`],
      );
    }
    this.stopIfSignalled(logFile);
    if (exit.exitCode !== 0) {
      throw new StageFailure(
        new JiraImagesError("PACKER_INIT_FAILED", `\`packer init ${dir}\` ${describeExit(exit)}`),
        EXIT.packerFailed,
        [`log: ${logFile}`],
      );
    }
  }

  private async build(bin: string, argv: string[], logFd: number, logFile: string, marker: LiveRunMarker): Promise<BuildRun> {
    const packer = startPacker(bin, argv, { logFd, env: this.io.env, cwd: this.io.cwd });
    this.active = packer;
    if (packer.pid > 0) marker.packerStarted(packer.pid);
    const watchdog = packer.pid > 0 ? this.startWatchdog(packer.pid, logFile) : undefined;
    if (this.signal !== undefined || this.timedOut) packer.interrupt();

    const parser = new MachineReadableParser();
    const scanner = new CredentialScanner(this.redactor);
    const onText = (text: string) => {
      parser.push(text);
      scanner.push(text);
    };
    const following = followFile(logFile, onText, packer.exited);
    let exit: PackerExit;
    try {
      exit = await packer.exited;
    } finally {
      this.active = undefined;
      await following;
      if (watchdog !== undefined) signalGroup(watchdog, "SIGTERM");
    }
    // A provisioner's background process must not outlive the build.
    signalGroup(packer.pid, "SIGTERM");
    if (scanner.seen) await redactFileInPlace(logFile, this.redactor);
    return {
      exit,
      stream: parser.end(),
      timedOut: this.timedOut,
      ...(this.signal !== undefined ? { signal: this.signal } : {}),
    };
  }

  private startWatchdog(packerPid: number, logFile: string): number | undefined {
    const watchdogArgs = [WATCHDOG, String(process.pid), String(packerPid), logFile, process.execPath, TSX_LOADER, REDACT_LOG];
    // The watchdog's redaction reads the same secrets from the same environment; only the secret
    // variables' names are added, never a value on a command line.
    const child = execa("/bin/sh", watchdogArgs, {
      env: { ...this.io.env, [SECRET_VARS_ENV]: this.args.secretVars.join(",") },
      extendEnv: false,
      detached: true,
      cleanup: false,
      stdio: "ignore",
      reject: false,
      cwd: dirname(logFile),
    });
    child.unref();
    // Its result is of no interest: it reports into the log, and it is stopped with SIGTERM.
    child.catch(() => undefined);
    return child.pid;
  }

  private async outcome(
    build: BuildRun,
    run: { logFile: string; manifestPath: string | undefined; packerVersion: string | undefined; runId: string },
  ): Promise<StageResult> {
    const { exit, stream } = build;
    const logLine = `log: ${run.logFile}`;
    if (build.timedOut) {
      throw new StageFailure(
        new JiraImagesError("TIMEOUT", `timed out after ${this.args.timeoutSeconds} s; ${cleanupOutcome(stream, exit)}`),
        EXIT.timeout,
        [...(await this.leftBehind(stream, run.manifestPath)), logLine],
      );
    }
    if (build.signal !== undefined) {
      throw new StageFailure(
        new JiraImagesError("INTERRUPTED", `received ${build.signal}; ${cleanupOutcome(stream, exit)}`),
        signalExitCode(build.signal),
        [...(await this.leftBehind(stream, run.manifestPath)), logLine],
      );
    }
    if (exit.exitCode !== 0) {
      const errors = packerErrorLines(stream, this.redactor);
      const left = await this.leftBehind(stream, run.manifestPath);
      const packerErrors = errors.length > 0 ? errors : ["(Packer printed no error message)"];
      const tests = stream.imageTests;
      if (tests !== undefined && tests.failed > 0 && left.length === 0) {
        return this.fail(
          "IMAGE_TESTS_FAILED",
          `${tests.failed} of ${tests.passed + tests.failed} image tests failed on the build instance, so no AMI was made (the FAILED lines below name them)`,
          [...packerErrors, logLine],
        );
      }
      // An image made before a post-processor, a copy or tagging failed is not in the state: say so.
      if (left.length > 0) {
        return this.fail("PACKER_FAILED_AFTER_IMAGE", `packer build ${describeExit(exit)} after creating images that no state records`, [
          ...packerErrors,
          ...left,
          logLine,
        ]);
      }
      return this.fail("PACKER_FAILED", `packer build ${describeExit(exit)}`, [...packerErrors, logLine]);
    }
    const selection = selectStageImage(stream);
    if (selection.kind === "none") {
      // The manifest post-processor repeats each artifact; say each one once.
      const made = [
        ...new Set(
          selection.artifacts.map(
            (a) => `artifact of ${a.target || "(no build name)"}: builder ${a.builderId ?? "?"}, id ${JSON.stringify(a.id ?? "")}`,
          ),
        ),
      ];
      return this.fail(
        "NO_AMI",
        stream.artifacts.length === 0
          ? "packer build exited 0 but created no artifact at all, so no AMI"
          : "packer build exited 0 but none of its artifacts is an AMI (region:ami-...)",
        [...made, ...(await this.leftBehind(stream, run.manifestPath)), logLine],
      );
    }
    if (selection.kind === "several") {
      return this.fail(
        "MULTIPLE_IMAGES",
        `packer build created ${selection.images.length} different images, a stage must create exactly one: ` +
          selection.images.map(describeImage).join("; "),
        [...(await this.leftBehind(stream, run.manifestPath)), logLine],
      );
    }
    const image = selection.image;
    const tests = this.imageTests(stream);
    if (typeof tests === "string") {
      return this.fail("IMAGE_TESTS_UNPROVEN", `packer build made ${describeImage(image)}, but ${tests}; the image is not used`, [
        ...(await this.leftBehind(stream, run.manifestPath)),
        logLine,
      ]);
    }
    let packerRunUuid: string | undefined;
    if (run.manifestPath !== undefined) {
      if (existsSync(run.manifestPath)) {
        let manifest;
        try {
          manifest = await readManifest(run.manifestPath);
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          return this.fail("MANIFEST_INVALID", `cannot read the manifest ${run.manifestPath}: ${reason}`, [
            ...(await this.leftBehind(stream, undefined)),
            logLine,
          ]);
        }
        const check = checkManifest(manifest, image);
        if (!check.ok) {
          return this.fail("MANIFEST_MISMATCH", `${check.problem} (manifest: ${run.manifestPath})`, [
            ...(await this.leftBehind(stream, run.manifestPath)),
            logLine,
          ]);
        }
        packerRunUuid = check.runUuid;
      } else {
        this.io.stderr(
          `warning: the template declares manifest_path but wrote no manifest to ${run.manifestPath}; ` +
            "relying on the log alone (add a manifest post-processor with output = var.manifest_path)",
        );
      }
    }
    return this.result(image, run.logFile, run.packerVersion, packerRunUuid, tests, run.runId);
  }

  /**
   * The tests of a build that made its image: none asked for (no image_tests_count var), their
   * result, or why the output does not prove they all ran and passed. Only a whole pass counts: a
   * build whose output lacks the result line must never be reported as tested.
   */
  private imageTests(stream: BuildStream): StageTests | undefined | string {
    const countVar = this.varValue(IMAGE_TEST_VARS.count);
    if (countVar === undefined) return undefined;
    const expected = Number(countVar);
    const line = stream.imageTests;
    if (line === undefined) return `its output has no image tests result line (image-tests: stage=${this.args.stage} passed=${expected} failed=0)`;
    if (line.stage !== this.args.stage) return `its image tests result line is for stage ${line.stage}`;
    if (line.failed > 0 || line.passed !== expected) {
      return `its image tests report passed=${line.passed} failed=${line.failed}, not all ${expected} checks passed`;
    }
    return { passed: true, count: expected };
  }

  /** A `--var` as Packer sees it (the last one given wins). */
  private varValue(name: string): string | undefined {
    return this.args.vars.filter(([key]) => key === name).at(-1)?.[1];
  }

  /** The regions a build's images can be in: its region and the `ami_regions` copies. */
  private candidateRegions(): string[] {
    const regions = new Set<string>();
    const region = this.varValue("region");
    if (region) regions.add(region);
    try {
      const copies: unknown = JSON.parse(this.varValue("ami_regions") ?? "[]");
      if (Array.isArray(copies)) for (const r of copies) if (typeof r === "string") regions.add(r);
    } catch {
      // Not a JSON list: Packer itself refuses it; there is nothing more to name.
    }
    return [...regions];
  }

  /** The lines that name the images a failed run leaves behind and how to remove them; none when there are none. */
  private async leftBehind(stream: BuildStream, manifestPath: string | undefined): Promise<string[]> {
    const region = this.varValue("region");
    const images = imagesLeftBehind(stream, {
      ...(region ? { buildRegion: region } : {}),
      manifestPairs: manifestPath !== undefined ? await manifestAmiPairs(manifestPath) : [],
    });
    return images.length > 0 ? leftImagesAdvice(images, this.candidateRegions()) : [];
  }

  private fail(code: string, message: string, details: string[]): never {
    throw new StageFailure(new JiraImagesError(code, message), EXIT.packerFailed, details);
  }

  private result(
    image: StageImage,
    logFile: string,
    packerVersion: string | undefined,
    packerRunUuid: string | undefined,
    tests: StageTests | undefined,
    runId: string,
  ): StageResult {
    return StageResultSchema.parse({
      stage: this.args.stage,
      runId,
      amiId: image.amiId,
      region: image.region,
      amis: image.amis,
      logFile,
      ...(image.builderId !== undefined ? { builderId: image.builderId } : {}),
      ...(packerVersion !== undefined ? { packerVersion } : {}),
      ...(packerRunUuid !== undefined ? { packerRunUuid } : {}),
      durationSeconds: Math.round((Date.now() - this.started) / 100) / 10,
      ...(tests !== undefined ? { tests } : {}),
    });
  }
}

/** The AMIs of a manifest's last run, or none when there is no readable manifest (a failed run may write none). */
async function manifestAmiPairs(path: string): Promise<RegionAmi[]> {
  if (!existsSync(path)) return [];
  try {
    const manifest = await readManifest(path);
    return manifest.builds.filter((b) => b.packer_run_uuid === manifest.last_run_uuid).flatMap((b) => validAmiPairs(b.artifact_id));
  } catch {
    return [];
  }
}

/** The same failure with every known secret redacted from its message and details. */
function redactFailure(error: unknown, redactor: Redactor): unknown {
  if (error instanceof StageFailure && error.cause instanceof JiraImagesError) {
    const cause = error.cause;
    const message = redactor.redact(cause.message.slice(cause.code.length + 2));
    return new StageFailure(new JiraImagesError(cause.code, message), error.exitCode, error.details.map((d) => redactor.redact(d)));
  }
  if (error instanceof JiraImagesError) {
    return new JiraImagesError(error.code, redactor.redact(error.message.slice(error.code.length + 2)), { cause: error.cause });
  }
  return error;
}

/**
 * Runs one stage; resolves to the result line's object, or rejects with a `StageFailure`/`JiraImagesError`.
 * Whatever it says on stderr or in an error has the secrets it knows redacted.
 */
export async function runStage(args: RunnerArgs, io: RunnerIo): Promise<StageResult> {
  const redactor = Redactor.fromEnvironment(io.env, args.secretVars);
  const redactedIo: RunnerIo = { ...io, stderr: (line) => io.stderr(redactor.redact(line)) };
  try {
    return await new Runner(args, redactedIo, redactor).run();
  } catch (error) {
    throw redactFailure(error, redactor);
  }
}
