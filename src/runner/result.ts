import { z } from "zod";

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
  durationSeconds: z.number().nonnegative().optional(),
});

export type StageResult = z.infer<typeof StageResultSchema>;
