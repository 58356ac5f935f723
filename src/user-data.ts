import { JiraImagesError } from "./errors.ts";
import { LAUNCH_SAFE_URL, USER_DATA_HARD_LIMIT_BYTES } from "./config.ts";

/** Where the launch settings land on the instance; the image's Jira service reads this file. */
const LAUNCH_ENV_FILE = "/etc/jira-images/launch.env";

/** Only what is known at launch: everything else is baked into the image. */
export interface LaunchSettings {
  hostname: string;
  environment: string;
  /** Empty or absent: not set. */
  jiraBaseUrl?: string;
}

const HOSTNAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ENVIRONMENT = /^[a-z][a-z0-9-]*$/;

function invalid(what: string, value: string, expected: string): never {
  throw new JiraImagesError("USER_DATA_INVALID", `${what} ${JSON.stringify(value)} must be ${expected}`);
}

/**
 * Renders an instance's user data: a short shell script that sets the hostname and writes the
 * launch settings to LAUNCH_ENV_FILE. Deterministic, so that an unchanged setting never
 * replaces an instance.
 */
export function renderUserData(settings: LaunchSettings): string {
  if (!HOSTNAME.test(settings.hostname)) invalid("hostname", settings.hostname, "a DNS label (a-z, 0-9, -; at most 63)");
  if (!ENVIRONMENT.test(settings.environment)) invalid("environment", settings.environment, "lower-case letters, digits and dashes");
  const baseUrl = settings.jiraBaseUrl ?? "";
  if (baseUrl !== "" && !LAUNCH_SAFE_URL.test(baseUrl)) invalid("Jira base URL", baseUrl, "an http(s) URL without quotes or spaces");
  const env = [`JIRA_ENVIRONMENT=${settings.environment}`];
  if (baseUrl !== "") env.push(`JIRA_BASE_URL=${baseUrl}`);
  return [
    "#!/bin/sh",
    "# jira-images: launch-time settings only; everything else is baked into the image.",
    "set -eu",
    `hostnamectl set-hostname ${settings.hostname}`,
    `install -d -m 0755 ${LAUNCH_ENV_FILE.slice(0, LAUNCH_ENV_FILE.lastIndexOf("/"))}`,
    `cat > ${LAUNCH_ENV_FILE} <<'EOF'`,
    ...env,
    "EOF",
    "",
  ].join("\n");
}

/** Throws when user data exceeds its budget (or AWS's 16 KB limit); returns its size in bytes. */
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
