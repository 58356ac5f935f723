import { commonVars, type StageDefinition } from "../src/stages.ts";
import type { StackConfig } from "../src/config.ts";

/** OS base image: the stack's OS (Amazon Linux 2023 by default), patched, with the SSM agent. */
export function baseStage(config: StackConfig): StageDefinition {
  return {
    name: "base",
    template: "packer/base",
    workspace: [],
    installers: [],
    scanInputs: [],
    varFiles: [],
    tests: ["base"],
    vars: {
      ...commonVars("base", config),
      source_ami: config.sourceAmi,
      source_ami_owners: config.sourceAmiOwners,
      source_ami_name_filter: config.sourceAmiNameFilter,
    },
  };
}
