import { commonVars, type StageDefinition } from "../src/stages.ts";
import { installerPin, type InstallerPins } from "../src/installer-checksums.ts";
import type { StackConfig } from "../src/config.ts";

/** The installer of a Jira version, kept in git-lfs (see .gitattributes). */
export function jiraInstaller(version: string): string {
  return `packer/files/atlassian-jira-software-${version}.tar.gz`;
}

/** Where Atlassian publishes that installer (Jira Software, Linux, TAR.GZ archive). */
export function jiraInstallerUrl(version: string): string {
  return `https://www.atlassian.com/software/jira/downloads/binary/atlassian-jira-software-${version}.tar.gz`;
}

/**
 * Jira base image: Jira installed and configured in general (first Chef run, role jira-base).
 * The installer's pin goes to the template, which refuses to start without one and checks the
 * uploaded installer against it before Chef unpacks it.
 */
export function jiraStage(config: StackConfig, pins: InstallerPins): StageDefinition {
  const installer = jiraInstaller(config.jiraVersion);
  return {
    name: "jira",
    parent: "base",
    template: "packer/jira",
    workspace: ["packer/chef"],
    installers: [installer],
    installerSource: `Jira Software ${config.jiraVersion} (TAR.GZ archive) from ${jiraInstallerUrl(config.jiraVersion)} (all versions: https://www.atlassian.com/software/jira/download-archives)`,
    scanInputs: ["packer/files"],
    varFiles: [],
    // Everything the OS base image promises still holds, and Jira is installed.
    tests: ["base", "jira"],
    vars: {
      ...commonVars("jira", config),
      jira_version: config.jiraVersion,
      jira_installer_sha256: installerPin(pins, installer) ?? "",
    },
  };
}
