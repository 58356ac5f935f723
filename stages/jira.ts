import { commonVars, type StageDefinition } from "../src/stages.ts";
import type { StackConfig } from "../src/config.ts";

/** The installer of a Jira version, kept in git-lfs (see .gitattributes). */
export function jiraInstaller(version: string): string {
  return `packer/files/atlassian-jira-software-${version}.tar.gz`;
}

/** Jira base image: Jira installed and configured in general (first Chef run, role jira-base). */
export function jiraStage(config: StackConfig): StageDefinition {
  return {
    name: "jira",
    parent: "base",
    template: "packer/jira",
    workspace: ["packer/chef"],
    installers: [jiraInstaller(config.jiraVersion)],
    scanInputs: ["packer/files"],
    varFiles: [],
    vars: {
      ...commonVars("jira", config),
      jira_version: config.jiraVersion,
    },
  };
}
