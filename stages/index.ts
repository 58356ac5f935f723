import type { StackConfig } from "../src/config.ts";
import { realTemplateFs, validateStages, type StageDefinition } from "../src/stages.ts";
import { baseStage } from "./base.ts";
import { jiraStage } from "./jira.ts";
import { customStage } from "./custom.ts";

/** The stages one stack builds: base ▶ jira ▶ custom-<environment> (validated by validateStages). */
export function declareStages(config: StackConfig): StageDefinition[] {
  return [baseStage(config), jiraStage(config), customStage(config)];
}

/** The stack's stages checked against the templates under `projectRoot`, parents first. */
export function stackStages(config: StackConfig, projectRoot: string): StageDefinition[] {
  return validateStages(declareStages(config), realTemplateFs(projectRoot));
}
