import type { PlanFormat } from "./args.ts";
import type { DriverIo } from "./io.ts";

/**
 * Module boundary for the offline rebuild plan (issue 5). It needs the program's named input
 * hashes (`src/inputs-hash.ts`), so the lead fills it in once those exist. Until then it refuses
 * honestly instead of printing a plan it cannot compute.
 */
export interface PlanRequest {
  stack: string;
  format: PlanFormat;
  /** Project root (where Pulumi.yaml and `.pulumi-state/` live). */
  root: string;
  /** Environment of the run (for PULUMI_BACKEND_URL, which tells where a checkpoint may be). */
  env: NodeJS.ProcessEnv;
}

/** Returns the process exit code. */
export async function runPlan(_request: PlanRequest, io: DriverIo): Promise<number> {
  io.stderr("plan: not implemented yet\n");
  return 2;
}
