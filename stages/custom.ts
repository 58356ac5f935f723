import { commonVars, customStageName, type StageDefinition } from "../src/stages.ts";
import type { StackConfig } from "../src/config.ts";

/**
 * Per-environment image (second Chef run with the environment's node, the old TARGET_NODE).
 * Each stack builds the one of its own environment.
 */
export function customStage(config: StackConfig): StageDefinition {
  const name = customStageName(config.environment);
  return {
    name,
    parent: "jira",
    template: "packer/custom",
    workspace: ["packer/chef"],
    installers: [],
    scanInputs: [],
    varFiles: [`packer/custom/${config.environment}.pkrvars.hcl`],
    // Whatever the second Chef run changed, the promises of the images below still hold.
    tests: ["base", "jira", "custom"],
    vars: {
      ...commonVars(name, config),
      jira_version: config.jiraVersion,
      environment: config.environment,
      chef_node: config.chefNode,
    },
  };
}
