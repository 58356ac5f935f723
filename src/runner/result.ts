import { z } from "zod";
import { JiraImagesError } from "../errors.ts";

/**
 * The one JSON line that the stage runner prints on success. It is the runner's contract with the
 * Pulumi program (which parses the command's stdout with this schema) and it is stored in Pulumi
 * state, so it stays small and never holds a secret.
 */
export const AmiIdSchema = z.string().regex(/^ami-[0-9a-f]{8,17}$/, "not an AMI ID (ami-xxxxxxxx)");
export const RegionSchema = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "not an AWS region name");

export const StageResultSchema = z.object({
  stage: z.string().min(1),
  /** AMI in `region`; for a multi-region build, the first region listed in Packer's artifact id. */
  amiId: AmiIdSchema,
  region: RegionSchema,
  /** Every region's AMI of this build (copies included). */
  amis: z.record(RegionSchema, AmiIdSchema),
  /** Full Packer machine-readable log of this run (never printed to stdout). */
  logFile: z.string().min(1),
  builderId: z.string().optional(),
  packerVersion: z.string().optional(),
  packerRunUuid: z.string().optional(),
  /** The runner's run id (`jira-images:run-id` on the build's resources); absent in results of older versions. */
  runId: z.string().optional(),
  durationSeconds: z.number().nonnegative().optional(),
  /** The image tests the build ran on its instance; absent when the stage has none (or state from before them). */
  tests: z.object({ passed: z.boolean(), count: z.number().int().nonnegative() }).optional(),
});

export type StageTests = NonNullable<z.infer<typeof StageResultSchema>["tests"]>;

export type StageResult = z.infer<typeof StageResultSchema>;

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

/**
 * Parses the runner's stdout: exactly one JSON line matching StageResultSchema, for this stage.
 * Anything else is an error naming the stage (the runner's contract is broken, or something
 * else wrote to stdout).
 */
export function parseStageStdout(stage: string, stdout: string): StageResult {
  const lines = stdout.split("\n").filter((line) => line.trim() !== "");
  const fail = (why: string): never => {
    throw new JiraImagesError("STAGE_OUTPUT_INVALID", `stage ${stage}: ${why}; stdout was: ${JSON.stringify(excerpt(stdout))}`);
  };
  if (lines.length !== 1) fail(`the runner must print exactly one JSON line on stdout, got ${lines.length}`);
  let json: unknown;
  try {
    json = JSON.parse(lines[0]!);
  } catch {
    return fail("the runner's stdout is not JSON");
  }
  const parsed = StageResultSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    return fail(`the runner's result does not match the stage result schema (${issues})`);
  }
  if (parsed.data.stage !== stage) fail(`the runner reported stage ${parsed.data.stage}`);
  return parsed.data;
}

/**
 * A build's AMI in `region`, picked by name (Packer sorts an artifact's regions, so `amiId` is the
 * alphabetically first region's), or undefined when the build made none there.
 */
export function amiInRegion(result: StageResult, region: string): string | undefined {
  return result.amis[region] ?? (result.region === region ? result.amiId : undefined);
}
