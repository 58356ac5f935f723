import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { JiraImagesError } from "./errors.ts";
import { IMAGE_TEST_VARS } from "./image-tests.ts";
import { regionKmsKeyMap, type StackConfig } from "./config.ts";

/** A Packer `-var` value: a string, or a list passed as a JSON (= HCL) list. */
export type VarValue = string | readonly string[];

/**
 * One image build: what it builds from (its parent stage's image, or the OS image for a root
 * stage), with which Packer template and which provisioning files. Paths are relative to the
 * project root, with `/` separators.
 */
export interface StageDefinition {
  readonly name: string;
  /** Stage whose AMI is this stage's `source_ami`; undefined for a root stage (OS image). */
  readonly parent?: string;
  /** Packer template folder (HCL2 files, loaded non-recursively by Packer). */
  readonly template: string;
  /** Provisioning workspace (files or folders uploaded to the build instance); hashed as `workspace`. */
  readonly workspace: readonly string[];
  /** Installers the build needs (`--require`, must not be LFS pointers); hashed as `installers`. */
  readonly installers: readonly string[];
  /** Where a user gets the installers (named in the preflight's fix), e.g. a vendor's download page. */
  readonly installerSource?: string;
  /** Further paths the runner scans for LFS pointers (`--input`), not part of any hash. */
  readonly scanInputs: readonly string[];
  /** `-var-file`s of the stage; their content is part of the `vars` hash. */
  readonly varFiles: readonly string[];
  /** Template variables; `source_ami` of a child stage and `inputs_hash` are added by the pipeline. */
  readonly vars: Readonly<Record<string, VarValue>>;
  /**
   * Image test suites (packer/common/image-tests/<suite>.sh) the build runs on its instance before
   * the AMI is made; hashed as `tests`. The pipeline passes them and their check count to Packer.
   */
  readonly tests?: readonly string[];
}

/** Variables the pipeline or the runner set; a stage declaring them is a mistake. */
const PIPELINE_VARS: ReadonlySet<string> = new Set(["inputs_hash", "manifest_path", IMAGE_TEST_VARS.suites, IMAGE_TEST_VARS.count, "run_id"]);

/** The stage that builds environment `env`'s image. */
export function customStageName(env: string): string {
  return `custom-${env}`;
}

const COMMAND_SUFFIX = "-build";

/**
 * Name of a stage's build command resource. The driver finds stages in engine events and in
 * checkpoints by this name alone, so it is built and read back only here.
 */
export function stageCommandName(stage: string): string {
  return `${stage}${COMMAND_SUFFIX}`;
}

/** The resource name at the end of a URN (`urn:pulumi:<stack>::<project>::<type>::<name>`). */
export function urnResourceName(urn: string): string {
  const at = urn.lastIndexOf("::");
  return at >= 0 ? urn.slice(at + 2) : urn;
}

/** The stage whose build command a resource URN names, or undefined for any other resource. */
export function stageOfCommandUrn(urn: string): string | undefined {
  const name = urnResourceName(urn);
  if (!name.endsWith(COMMAND_SUFFIX) || name.includes(":")) return undefined;
  const stage = name.slice(0, -COMMAND_SUFFIX.length);
  return stage === "" ? undefined : stage;
}

/** Variables every stage template declares (the cross-team contract), from the stack config. */
export function commonVars(stage: string, config: StackConfig): Record<string, VarValue> {
  return {
    stage,
    // Tagged on the image; the stage's delete step refuses images of another stack.
    stack: config.stack,
    region: config.region,
    ami_regions: config.amiRegions,
    kms_key_id: config.kmsKeyId,
    // A JSON object is also an HCL object: Packer reads it as the map(string) it declares.
    region_kms_key_ids: JSON.stringify(regionKmsKeyMap(config.regionKmsKeyIds)),
    build_instance_type: config.buildInstanceType,
    ssh_username: config.sshUsername,
  };
}

/** What validation needs from the file system; tests pass a fake. */
export interface TemplateFs {
  isDirectory(path: string): boolean;
  list(dir: string): string[];
}

export function realTemplateFs(projectRoot: string): TemplateFs {
  const stat = (p: string) => statSync(join(projectRoot, p), { throwIfNoEntry: false });
  return {
    isDirectory: (p) => stat(p)?.isDirectory() ?? false,
    list: (p) => readdirSync(join(projectRoot, p)),
  };
}

const STAGE_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const TEMPLATE_FILE = /\.pkr\.(hcl|json)$/;

/**
 * Checks the declared stages form a DAG of existing templates and returns them parents first
 * (declaration order among siblings). Throws a JiraImagesError naming the offending stage. The
 * files a build needs beyond its template (installers, var files) are the preflight's
 * (src/preflight.ts), which lists every missing one at once.
 */
export function validateStages(stages: readonly StageDefinition[], fs: TemplateFs): StageDefinition[] {
  const byName = new Map<string, StageDefinition>();
  for (const stage of stages) {
    if (!STAGE_NAME.test(stage.name)) {
      throw new JiraImagesError(
        "STAGE_INVALID",
        `stage name ${JSON.stringify(stage.name)} must be lower-case letters, digits and dashes, starting with a letter`,
      );
    }
    if (byName.has(stage.name)) {
      throw new JiraImagesError("STAGE_DUPLICATE", `stage ${stage.name} is declared twice; stage names must be unique`);
    }
    byName.set(stage.name, stage);
  }

  for (const stage of stages) {
    if (stage.parent !== undefined && !byName.has(stage.parent)) {
      throw new JiraImagesError(
        "STAGE_UNKNOWN_PARENT",
        `stage ${stage.name} names parent ${stage.parent}, which is not declared (declared: ${[...byName.keys()].join(", ")})`,
      );
    }
  }

  for (const stage of stages) {
    const path = [stage.name];
    let current = stage.parent;
    while (current !== undefined) {
      path.push(current);
      if (current === stage.name) {
        throw new JiraImagesError("STAGE_CYCLE", `stages form a cycle: ${path.join(" -> ")}`);
      }
      current = byName.get(current)!.parent;
      if (path.length > byName.size + 1) break;
    }
  }

  for (const stage of stages) {
    if (!fs.isDirectory(stage.template)) {
      throw new JiraImagesError(
        "STAGE_TEMPLATE_MISSING",
        `stage ${stage.name}: template folder ${stage.template} does not exist (paths are relative to the project root)`,
      );
    }
    if (!fs.list(stage.template).some((f) => TEMPLATE_FILE.test(f))) {
      throw new JiraImagesError(
        "STAGE_TEMPLATE_MISSING",
        `stage ${stage.name}: template folder ${stage.template} holds no *.pkr.hcl or *.pkr.json file`,
      );
    }
    const reserved = Object.keys(stage.vars).filter(
      (v) => PIPELINE_VARS.has(v) || (v === "source_ami" && stage.parent !== undefined),
    );
    if (reserved.length > 0) {
      throw new JiraImagesError(
        "STAGE_INVALID",
        `stage ${stage.name} sets ${reserved.join(", ")}, which the pipeline sets itself (source_ami of a child stage is its parent's AMI)`,
      );
    }
  }

  const ordered: StageDefinition[] = [];
  const placed = new Set<string>();
  while (ordered.length < stages.length) {
    for (const stage of stages) {
      if (!placed.has(stage.name) && (stage.parent === undefined || placed.has(stage.parent))) {
        ordered.push(stage);
        placed.add(stage.name);
      }
    }
  }
  return ordered;
}

/** Names from the root down to `stage`, e.g. ["base", "jira", "custom-dev"]. */
export function lineage(stages: readonly StageDefinition[], stage: string): string[] {
  const byName = new Map(stages.map((s) => [s.name, s]));
  const chain: string[] = [];
  for (let current: string | undefined = stage; current !== undefined; current = byName.get(current)?.parent) {
    chain.unshift(current);
  }
  return chain;
}
