import { JiraImagesError } from "./errors.ts";
import { LAUNCH_UNSAFE, USER_DATA_HARD_LIMIT_BYTES, isLaunchUrl } from "./config.ts";

/**
 * Where the launch settings land on the instance. The image reads this file as data (one
 * `KEY=value` per line, the value verbatim after the first `=`), never by sourcing it.
 */
export const LAUNCH_ENV_FILE = "/etc/jira-images/launch.env";

/** Heredoc delimiter: quoted, so that the shell expands nothing in the values. */
const END_OF_SETTINGS = "JIRA_IMAGES_LAUNCH_ENV";

/** Only what is known at launch: everything else is baked into the image. */
export interface LaunchSettings {
  hostname: string;
  environment: string;
  /** Empty or absent: not set. */
  jiraBaseUrl?: string;
  /** DNS name of the Data Center shared home (EFS); only for a cluster. */
  sharedHomeEfs?: string;
}

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ENVIRONMENT = /^[a-z][a-z0-9-]*$/;
const DNS_NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

function invalid(what: string, value: string, expected: string): never {
  throw new JiraImagesError("USER_DATA_INVALID", `${what} ${JSON.stringify(value)} must be ${expected}`);
}

/** The launch.env lines, in the contract's keys; every value checked to be a single line of data. */
export function launchEnv(settings: LaunchSettings): string[] {
  if (!ENVIRONMENT.test(settings.environment)) invalid("environment", settings.environment, "lower-case letters, digits and dashes");
  const baseUrl = settings.jiraBaseUrl ?? "";
  if (baseUrl !== "" && !isLaunchUrl(baseUrl)) {
    invalid("Jira base URL", baseUrl, "an http(s) URL without user:password@, spaces, quotes, backslashes, $ or control characters");
  }
  const efs = settings.sharedHomeEfs ?? "";
  if (efs !== "" && !DNS_NAME.test(efs)) invalid("shared home", efs, "a DNS name");
  const lines = [`JIRA_ENVIRONMENT=${settings.environment}`];
  if (baseUrl !== "") lines.push(`JIRA_BASE_URL=${baseUrl}`);
  if (efs !== "") lines.push(`JIRA_SHARED_HOME_EFS=${efs}`, "JIRA_CLUSTER=true");
  for (const line of lines) {
    // Defence in depth: whatever a future key carries, it stays one line of data.
    if (LAUNCH_UNSAFE.test(line) || line === END_OF_SETTINGS) invalid("launch setting", line, "one line without quotes, spaces, $ or control characters");
  }
  return lines;
}

/**
 * Renders an instance's user data: a short shell script that sets the hostname and writes the
 * launch settings to LAUNCH_ENV_FILE through a quoted heredoc, so the values are written as they
 * are and never run. Deterministic, so that an unchanged setting never replaces an instance.
 */
export function renderUserData(settings: LaunchSettings): string {
  if (!HOSTNAME.test(settings.hostname)) invalid("hostname", settings.hostname, "a DNS label (a-z, 0-9, -; at most 63)");
  const env = launchEnv(settings);
  return [
    "#!/bin/sh",
    "# jira-images: launch-time settings only; everything else is baked into the image.",
    "set -eu",
    `hostnamectl set-hostname ${settings.hostname}`,
    `install -d -m 0755 ${LAUNCH_ENV_FILE.slice(0, LAUNCH_ENV_FILE.lastIndexOf("/"))}`,
    `cat > ${LAUNCH_ENV_FILE} <<'${END_OF_SETTINGS}'`,
    ...env,
    END_OF_SETTINGS,
    "",
  ].join("\n");
}

/** Throws when user data exceeds its budget (or AWS's 16 KB limit), counted in UTF-8 bytes; returns its size. */
export function checkUserDataBudget(userData: string, budgetBytes: number, what: string): number {
  const size = Buffer.byteLength(userData, "utf8");
  const limit = Math.min(budgetBytes, USER_DATA_HARD_LIMIT_BYTES);
  if (size > limit) {
    throw new JiraImagesError(
      "USER_DATA_OVER_BUDGET",
      `user data of ${what} is ${size} bytes, over its budget of ${limit} bytes ` +
        `(jira-images:userDataBudgetBytes; AWS allows at most ${USER_DATA_HARD_LIMIT_BYTES}). ` +
        "Bake the extra settings into the image (packer/chef) instead of growing user data",
    );
  }
  return size;
}

/** renderUserData within a byte budget. */
export function userDataWithinBudget(settings: LaunchSettings, budgetBytes: number): string {
  const userData = renderUserData(settings);
  checkUserDataBudget(userData, budgetBytes, settings.hostname);
  return userData;
}

/**
 * The longest DNS name an EFS file system can have in a region (`fs-` + 17 hex digits), so that
 * a cluster's user-data budget is checked before any resource exists.
 */
export function longestEfsDnsName(region: string): string {
  return `fs-${"f".repeat(17)}.efs.${region}.amazonaws.com.cn`;
}
