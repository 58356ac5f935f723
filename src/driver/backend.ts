import { join } from "node:path";
import { JiraImagesError } from "../errors.ts";

export interface BackendSettings {
  /** What the Pulumi CLI gets as PULUMI_BACKEND_URL. */
  url: string;
  /** The project-local state folder when the embedded default is used (created before use). */
  localStateDir?: string;
  /** Self-managed backends (file, s3, gs, azblob) keep secrets with the passphrase provider. */
  selfManaged: boolean;
}

const LOCAL_STATE_DIR = ".pulumi-state";

/**
 * The embedded default is a file backend inside the project, so that a new user needs no account;
 * PULUMI_BACKEND_URL, when set, wins (Pulumi Cloud, an S3 bucket, ...).
 */
export function resolveBackend(env: NodeJS.ProcessEnv, root: string): BackendSettings {
  const configured = env.PULUMI_BACKEND_URL?.trim();
  if (configured) return { url: configured, selfManaged: !/^https?:\/\//i.test(configured) };
  const localStateDir = join(root, LOCAL_STATE_DIR);
  // Pulumi expects file://<absolute path> verbatim (no percent-encoding), as `pulumi login file://...`.
  return { url: `file://${localStateDir}`, localStateDir, selfManaged: true };
}

/**
 * The passphrase secrets provider cannot prompt under the Automation API (it runs the CLI
 * non-interactively), so a missing passphrase would fail deep inside Pulumi; say it up front.
 * An empty passphrase is allowed when set explicitly, as Pulumi allows it.
 */
export function checkPassphrase(env: NodeJS.ProcessEnv, backend: BackendSettings): void {
  if (!backend.selfManaged) return;
  if (env.PULUMI_CONFIG_PASSPHRASE !== undefined || env.PULUMI_CONFIG_PASSPHRASE_FILE !== undefined) return;
  throw new JiraImagesError(
    "pipeline-passphrase",
    `the ${backend.url} backend keeps stack secrets with a passphrase; set PULUMI_CONFIG_PASSPHRASE ` +
      "(or PULUMI_CONFIG_PASSPHRASE_FILE=<file>) and keep using the same one for this stack, " +
      "e.g. export PULUMI_CONFIG_PASSPHRASE='<your passphrase>'",
  );
}
