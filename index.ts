import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseStackConfig, type StackConfig } from "./src/config.ts";
import { customStageName, lineage } from "./src/stages.ts";
import { ImagePipeline } from "./src/pipeline.ts";
import { JiraEnvironment } from "./src/instances.ts";
import { environmentSecret } from "./src/iam.ts";
import { PublicSharingBlock } from "./src/public-access.ts";
import { describeProblem, preflightError, stackPreflight } from "./src/preflight.ts";
import { resolveSourceImage } from "./src/source-image.ts";
import { stackStages } from "./stages/index.ts";

export interface JiraImagesOptions {
  /** Folder holding packer/ and src/runner/; defaults to this file's folder. */
  projectRoot?: string;
  /** Defaults to the current stack's config (Pulumi.<stack>.yaml). */
  config?: StackConfig;
  /** Where the builder's settings (PKR_VAR_ssh_source_cidrs) are read; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/**
 * The program: builds the stack's image chain and launches its environment's instances.
 * Pulumi calls this default export and makes its result the stack outputs; tests call it once
 * per stack under runtime mocks.
 */
export default function jiraImages(options: JiraImagesOptions = {}) {
  const projectRoot = options.projectRoot ?? dirname(fileURLToPath(import.meta.url));
  const stack = pulumi.getStack();
  const config = options.config ?? parseStackConfig(pulumi.runtime.allConfig(), { stack, file: `Pulumi.${stack}.yaml` });

  // Everything is checked before the first resource is declared.
  const stages = stackStages(config, projectRoot);
  const secret = environmentSecret(projectRoot, config.environment);
  const problems = stackPreflight(stages, projectRoot, options.env ?? process.env);
  if (problems.length > 0 && !pulumi.runtime.isDryRun()) throw preflightError(stack, problems);
  // A preview runs on (e.g.) a pull request's checkout without git-lfs files: it says, and goes on.
  for (const problem of problems) void pulumi.log.warn(`${describeProblem(problem)} (an up stops here before building anything)`);
  const leaf = customStageName(config.environment);

  const provider = new aws.Provider(`aws-${config.region}`, { region: config.region });
  const pipeline = new ImagePipeline("images", {
    stages,
    projectRoot,
    stack: config.stack,
    region: config.region,
    timeoutSeconds: config.buildTimeoutSeconds,
    deregisterReplacedImages: config.deregisterReplacedImages,
    sourceImage: resolveSourceImage(config, provider),
  });
  const image = pipeline.stage(leaf);

  const environment = new JiraEnvironment(
    config.environment,
    { config, secret, image: { stage: leaf, lineage: lineage(stages, leaf), amiId: image.amiId, inputsHash: image.inputs.inputsHash } },
    { providers: [provider] },
  );
  if (config.blockPublicImageSharing) {
    new PublicSharingBlock("public-sharing-block", { regions: [config.region, ...config.amiRegions] }, { providers: [provider] });
  }

  return {
    amiIds: pipeline.amiIds,
    images: pipeline.images,
    instances: environment.summary,
    loadBalancerDnsName: environment.loadBalancerDnsName,
  };
}
