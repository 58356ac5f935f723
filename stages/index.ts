import type { StackConfig } from "../src/config.ts";
import { readInstallerPins, type InstallerPins } from "../src/installer-checksums.ts";
import { realTemplateFs, validateStages, type StageDefinition } from "../src/stages.ts";
import { baseStage } from "./base.ts";
import { jiraStage } from "./jira.ts";
import { customStage } from "./custom.ts";

/**
 * The stages one stack builds: base ▶ jira ▶ custom-<environment> (validated by validateStages),
 * with the installer pins of packer/files/SHA256SUMS (none: the jira template refuses to build).
 */
export function declareStages(config: StackConfig, pins: InstallerPins = new Map()): StageDefinition[] {
  return [baseStage(config), jiraStage(config, pins), customStage(config)];
}

/** The stack's stages checked against the templates under `projectRoot`, parents first. */
export function stackStages(config: StackConfig, projectRoot: string): StageDefinition[] {
  return validateStages(declareStages(config, readInstallerPins(projectRoot)), realTemplateFs(projectRoot));
}
