/**
 * The current Packer and its amazon plugin, built by scripts/test-tools/20-packer.sh. Packer is
 * `packer-current`, so that it never shadows the Packer on PATH that the other tests run (Debian's
 * 1.6.6); the plugin sits in its own PACKER_PLUGIN_PATH, so `packer init` has nothing to fetch.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { realTool, TOOLS_DIR } from "./real-tools.ts";

export const PLUGIN_PATH = join(TOOLS_DIR, "packer", "plugins");
const AMAZON_PLUGIN_DIR = join(PLUGIN_PATH, "github.com", "hashicorp", "amazon");

export interface CurrentPacker {
  bin: string;
  /** The test's environment without AWS settings or PKR_VAR_s, plus the plugin path. */
  env(extra?: Record<string, string>): Record<string, string>;
}

export function currentPacker(): CurrentPacker {
  const bin = realTool("packer-current");
  const plugins = existsSync(AMAZON_PLUGIN_DIR) ? readdirSync(AMAZON_PLUGIN_DIR).filter((f) => f.startsWith("packer-plugin-amazon_v") && !f.endsWith("_SHA256SUM")) : [];
  if (plugins.length === 0) {
    throw new Error(`the amazon plugin is not installed in ${PLUGIN_PATH}: run \`bash scripts/install-test-tools.sh\` (builds the test tools into .tools/)`);
  }
  return {
    bin,
    env(extra = {}) {
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(process.env)) {
        if (value !== undefined && !key.startsWith("AWS_") && !key.startsWith("PKR_VAR_") && !key.startsWith("PACKER_")) env[key] = value;
      }
      return { ...env, PACKER_PLUGIN_PATH: PLUGIN_PATH, CHECKPOINT_DISABLE: "1", ...extra };
    },
  };
}
