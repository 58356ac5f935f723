import * as pulumi from "@pulumi/pulumi";
import { local } from "@pulumi/command";
import { JiraImagesError } from "./errors.ts";
import { shellQuote } from "./shell.ts";
import { amiInRegion, parseStageStdout, type StageResult, type StageTests } from "./runner/result.ts";
import { NO_PARENT, contentTriggers, parentAmiTrigger, sourceImageTrigger, stageInputs, triggerEntries, type StageInputs } from "./inputs-hash.ts";
import { stageCommandName, type StageDefinition, type VarValue } from "./stages.ts";
import { IMAGE_TEST_VARS, stageCheckNames } from "./image-tests.ts";

function varValue(value: VarValue): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * The command's `update`. Everything that changes an image is in the triggers, and a trigger
 * change replaces the command (a fresh `create`, i.e. a build). Any other input change (the
 * timeout, the deregistration flag) is an update, which must not rebuild: it re-emits the
 * previous result, which the provider passes in PULUMI_COMMAND_STDOUT.
 */
export const REEMIT_PREVIOUS_RESULT = `printf '%s\\n' "$PULUMI_COMMAND_STDOUT"`;

/**
 * Scripts of the stage commands, relative to the project root. The provider runs a command with
 * no `dir` in its own working directory, which the engine sets to the project root (the folder of
 * Pulumi.yaml). No input may name the checkout's path: the provider runs the *old* command's
 * `delete` with the old inputs, and any input change blanks the stage's outputs in a preview.
 */
export const RUNNER_SCRIPT = "src/runner/cli.ts";
export const DEREGISTER_SCRIPT = "src/runner/deregister-cli.ts";

export interface RunnerInvocation {
  stage: StageDefinition;
  inputsHash: string;
  /** The parent's AMI for a child stage, or a root stage's resolved OS image (becomes `--var source_ami=...`). */
  sourceAmi?: string;
  /** How many checks the stage's image test suites hold; 0 for a stage without tests. */
  testCount: number;
  timeoutSeconds: number;
}

/**
 * The create command of a stage: the runner as the provider's direct child (`exec`, so that a
 * cancel that kills the child reaches the runner, which then stops Packer cleanly). Every path is
 * relative to the project root, where the provider runs it.
 */
function runnerCommand(inv: RunnerInvocation): string {
  const { stage } = inv;
  // The stage's own source_ami (a root stage's pin, "" for the filter) gives way to the one given here.
  const vars: Array<[string, string]> = Object.keys(stage.vars)
    .filter((k) => inv.sourceAmi === undefined || k !== "source_ami")
    .sort()
    .map((k) => [k, varValue(stage.vars[k]!)]);
  if (inv.sourceAmi !== undefined) vars.push(["source_ami", inv.sourceAmi]);
  vars.push(["inputs_hash", inv.inputsHash]);
  if (inv.testCount > 0) {
    vars.push([IMAGE_TEST_VARS.suites, JSON.stringify(stage.tests ?? [])], [IMAGE_TEST_VARS.count, String(inv.testCount)]);
  }
  const args: string[] = ["--stage", stage.name, "--template", stage.template];
  for (const [k, v] of vars) args.push("--var", `${k}=${v}`);
  for (const f of stage.varFiles) args.push("--var-file", f);
  for (const p of [...stage.workspace, ...stage.scanInputs]) args.push("--input", p);
  for (const f of stage.installers) args.push("--require", f);
  args.push("--timeout", String(inv.timeoutSeconds));
  return ["exec", "node", "--import", "tsx", RUNNER_SCRIPT, ...args].map(shellQuote).join(" ");
}

/**
 * The command's `delete`: the provider runs it when the command is replaced (a rebuild, after the
 * new image exists) or destroyed, with the old result in PULUMI_COMMAND_STDOUT. It fails when an
 * image cannot be removed, which keeps the old command in state so that the next `up` retries.
 */
function deregisterCommand(stage: string, stack: string): string {
  return ["exec", "node", "--import", "tsx", DEREGISTER_SCRIPT, "--stage", stage, "--stack", stack].map(shellQuote).join(" ");
}

/** The AMI of a build in the region the next stage and the instances use, or a clear error. */
function requireAmiInRegion(stage: string, result: StageResult, region: string): string {
  const ami = amiInRegion(result, region);
  if (ami === undefined) {
    throw new JiraImagesError(
      "STAGE_OUTPUT_INVALID",
      `stage ${stage}: the build made no AMI in region ${region} (it made: ${JSON.stringify(result.amis)})`,
    );
  }
  return ami;
}

export interface StageArgs {
  definition: StageDefinition;
  /** Where the stage's files are read for its input hashes; never part of a resource input. */
  projectRoot: string;
  /** The region whose AMI the next stage and the instances use. */
  region: string;
  timeoutSeconds: number;
  /** Remove the stage's old images when its command is replaced or destroyed. */
  deregisterReplacedImages: boolean;
  /** The Pulumi stack: the delete step removes only images tagged with it. */
  stack: string;
  parent?: ImageStage;
  /** A root stage's OS image resolved at preview time (resolveSourceAmi): its source_ami and a trigger. */
  sourceImage?: pulumi.Output<string>;
}

/** One image build: a `local.Command` running the stage runner, and its parsed result. */
export class ImageStage extends pulumi.ComponentResource {
  readonly stageName: string;
  readonly parentStage: string | undefined;
  readonly inputs: StageInputs;
  /** How many checks the image tests run on the build instance (0: the stage has none). */
  readonly testCount: number;
  readonly command: local.Command;
  readonly result: pulumi.Output<StageResult>;
  /** AMI in the stack's region. */
  readonly amiId: pulumi.Output<string>;
  /** The parent's AMI this image was built from; "none" for a root stage. */
  readonly parentAmi: pulumi.Output<string>;
  /** The resolved OS image of a root stage, when resolveSourceAmi is on. */
  readonly sourceImage: pulumi.Output<string> | undefined;

  constructor(name: string, args: StageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("jira-images:pipeline:ImageStage", name, {}, opts);
    const { definition, projectRoot } = args;
    this.stageName = definition.name;
    this.parentStage = definition.parent;
    this.inputs = stageInputs(definition, projectRoot, args.parent?.inputs.inputsHash);
    this.parentAmi = args.parent ? args.parent.amiId : pulumi.output(NO_PARENT);
    this.testCount = stageCheckNames(definition.name, definition.tests ?? [], projectRoot).length;

    const command = (sourceAmi?: string) =>
      runnerCommand({
        stage: definition,
        inputsHash: this.inputs.inputsHash,
        sourceAmi,
        testCount: this.testCount,
        timeoutSeconds: args.timeoutSeconds,
      });
    this.sourceImage = args.parent ? undefined : args.sourceImage;
    const source = args.parent?.amiId ?? this.sourceImage;
    const create = source ? source.apply(command) : command();

    this.command = new local.Command(
      stageCommandName(name),
      {
        create,
        update: REEMIT_PREVIOUS_RESULT,
        // Not a trigger: turning it on or off is an update, which rebuilds nothing.
        delete: args.deregisterReplacedImages ? deregisterCommand(definition.name, args.stack) : undefined,
        // One element per named input, each known on its own: a preview names what changed even
        // while the parent's new AMI is still unknown.
        triggers: [
          ...contentTriggers(this.inputs),
          this.parentAmi.apply(parentAmiTrigger),
          ...(this.sourceImage ? [this.sourceImage.apply(sourceImageTrigger)] : []),
        ],
        // stdout is one small JSON line; stderr carries the runner's progress and errors.
        logging: "stderr",
        // Needed by `update` and `delete`. The E2BIG risk of pulumi-command#285 comes from large stdout; the
        // runner's is one small JSON line.
        addPreviousOutputInEnv: true,
      },
      { parent: this, dependsOn: args.parent ? [args.parent.command] : [] },
    );

    this.result = this.command.stdout.apply((stdout) => parseStageStdout(definition.name, stdout));
    this.amiId = this.result.apply((result) => requireAmiInRegion(definition.name, result, args.region));
    this.registerOutputs({ amiId: this.amiId, result: this.result });
  }
}

export interface ImageSummary {
  stage: string;
  amiId: string;
  /** region -> AMI, copies included. */
  amis: Record<string, string>;
  regions: string[];
  parentStage: string | null;
  parentAmi: string;
  inputsHash: string;
  triggers: string[];
  logFile: string;
  /** The image tests the build ran before the AMI was made; absent for an image built without them. */
  tests?: StageTests;
}

/** The stack output `images` entry of a stage. */
function imageSummary(stage: ImageStage): pulumi.Output<ImageSummary> {
  const sourceImage = stage.sourceImage ?? pulumi.output(undefined);
  return pulumi.all([stage.result, stage.amiId, stage.parentAmi, sourceImage]).apply(([result, amiId, parentAmi, source]) => ({
    stage: stage.stageName,
    amiId,
    amis: result.amis,
    regions: Object.keys(result.amis).sort(),
    parentStage: stage.parentStage ?? null,
    parentAmi,
    inputsHash: stage.inputs.inputsHash,
    triggers: [...triggerEntries(stage.inputs, parentAmi), ...(source === undefined ? [] : [sourceImageTrigger(source)])],
    logFile: result.logFile,
    ...(result.tests !== undefined ? { tests: result.tests } : {}),
  }));
}

export interface PipelineArgs {
  /** Stages parents first, as returned by validateStages. */
  stages: readonly StageDefinition[];
  projectRoot: string;
  region: string;
  timeoutSeconds: number;
  deregisterReplacedImages: boolean;
  /** The Pulumi stack (the `stack` var every stage tags its image with). */
  stack: string;
  /** The root stages' OS image resolved at preview time (resolveSourceAmi); undefined: as their vars say. */
  sourceImage?: pulumi.Output<string>;
}

/** The stage chain of a stack: one ImageStage per stage, each built from its parent's AMI. */
export class ImagePipeline extends pulumi.ComponentResource {
  readonly stages: ReadonlyMap<string, ImageStage>;
  readonly amiIds: pulumi.Output<Record<string, string>>;
  readonly images: pulumi.Output<Record<string, ImageSummary>>;

  constructor(name: string, args: PipelineArgs, opts?: pulumi.ComponentResourceOptions) {
    super("jira-images:pipeline:ImagePipeline", name, {}, opts);
    const stages = new Map<string, ImageStage>();
    for (const definition of args.stages) {
      const parent = definition.parent === undefined ? undefined : stages.get(definition.parent);
      if (definition.parent !== undefined && parent === undefined) {
        throw new JiraImagesError("STAGE_UNKNOWN_PARENT", `stage ${definition.name}: parent ${definition.parent} is not declared before it`);
      }
      stages.set(
        definition.name,
        new ImageStage(
          definition.name,
          {
            definition,
            projectRoot: args.projectRoot,
            region: args.region,
            timeoutSeconds: args.timeoutSeconds,
            deregisterReplacedImages: args.deregisterReplacedImages,
            stack: args.stack,
            parent,
            sourceImage: args.sourceImage,
          },
          { parent: this },
        ),
      );
    }
    this.stages = stages;
    const entries = [...stages.values()];
    this.amiIds = pulumi
      .all(entries.map((s) => s.amiId))
      .apply((ids) => Object.fromEntries(entries.map((s, i) => [s.stageName, ids[i]!])));
    this.images = pulumi
      .all(entries.map(imageSummary))
      .apply((summaries) => Object.fromEntries(summaries.map((s) => [s.stage, s])));
    this.registerOutputs({ amiIds: this.amiIds, images: this.images });
  }

  stage(name: string): ImageStage {
    const stage = this.stages.get(name);
    if (!stage) throw new JiraImagesError("STAGE_UNKNOWN", `no stage ${name} in this stack (stages: ${[...this.stages.keys()].join(", ")})`);
    return stage;
  }
}
