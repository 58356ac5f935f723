import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { z } from "zod";
import { PROJECT, type PromotedPin } from "./config.ts";
import { JiraImagesError } from "./errors.ts";
import { AmiIdSchema, RegionSchema } from "./runner/result.ts";
import type { StageDefinition } from "./stages.ts";

/** Tag key that marks an AMI as used by `stack` (the shared contract: retention refuses such an AMI). */
export function pinTagKey(stack: string): string {
  return `${PROJECT}:pinned-by:${stack}`;
}

const TestsSchema = z.object({ passed: z.boolean(), count: z.number().int().nonnegative() });
export type TestResult = z.infer<typeof TestsSchema>;

/** The part of a source stack's `images` entry a promotion reads; other fields are carried over as they are. */
const SourceImageSchema = z
  .object({
    stage: z.string(),
    amiId: AmiIdSchema,
    amis: z.record(RegionSchema, AmiIdSchema),
    parentStage: z.string().nullable(),
    inputsHash: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    tests: z.unknown().optional(),
  })
  .passthrough();
export type SourceImage = z.infer<typeof SourceImageSchema>;

/** Where a promoted stage's image came from (in this stack's `images` output). */
export interface PromotedFrom {
  stack: string;
  amiId: string;
  tests: TestResult | null;
}

export interface PromotedStage {
  stage: string;
  /** The AMI in this stack's region (tagged as pinned). */
  amiId: string;
  /** The source stack's `images` entry, with `promotedFrom`. */
  entry: SourceImage & { promotedFrom: PromotedFrom };
}

/** A checked promotion: the promoted stage and its ancestors (root first), and the stages this stack still builds. */
export interface Promotion {
  pin: Required<PromotedPin>;
  tests: TestResult;
  /** Root first, the promoted stage last. */
  lineage: PromotedStage[];
  /** Stages below the promoted one, parents first: the only ones this stack builds. */
  builds: StageDefinition[];
}

export interface PromotionContext {
  pin: PromotedPin;
  /** This stack. */
  stack: string;
  /** This stack's region: the pinned AMI must be the source image's AMI there. */
  region: string;
  /** This stack's chain, parents first (validateStages). */
  stages: readonly StageDefinition[];
  /** This stack's own leaf stage (custom-<env>), which can never be promoted. */
  leaf: string;
}

function file(stack: string): string {
  return `Pulumi.${stack}.yaml`;
}

function promoteHint(ctx: PromotionContext): string {
  return `npm run pipeline -- promote --from ${ctx.pin.fromStack} --to ${ctx.stack}`;
}

/**
 * The pin's own problems, before the source stack is read: the stage must be one of this stack's
 * chain above its leaf, and an AMI must have been promoted. Pure (the driver uses it too).
 */
export function checkPin(ctx: PromotionContext): asserts ctx is PromotionContext & { pin: Required<PromotedPin> } {
  const { pin, stack } = ctx;
  const where = `${file(stack)}: ${PROJECT}:promoted`;
  const promotable = ctx.stages.map((s) => s.name).filter((s) => s !== ctx.leaf);
  if (!promotable.includes(pin.stage)) {
    throw new JiraImagesError(
      "PROMOTION_STAGE_INVALID",
      `${where} takes stage ${pin.stage} from ${pin.fromStack}, but ${pin.stage} is ${pin.stage === ctx.leaf ? "this stack's own image, which it always builds" : "not a stage of this stack"}. ` +
        `Fix: set stage to one of ${promotable.join(", ")} in ${file(stack)}`,
    );
  }
  if (pin.amiId === undefined) {
    throw new JiraImagesError(
      "PROMOTION_PENDING",
      `${where} takes ${pin.stage} from ${pin.fromStack}, but no image is promoted yet (no amiId). ` +
        `Fix: run \`${promoteHint(ctx)}\` (it writes the amiId of ${pin.fromStack}'s tested ${pin.stage} image) and commit ${file(stack)}`,
    );
  }
}

/**
 * Checks the pin against the source stack's `images` output and returns the promotion: refuses an
 * AMI the source does not export for that stage in this stack's region, an image whose tests did
 * not pass (or that has no test result), and a source without the outputs. Pure.
 */
export function resolvePromotion(ctx: PromotionContext, sourceImages: unknown): Promotion {
  checkPin(ctx);
  const { pin, stack, region } = ctx;
  const where = `${file(stack)}: ${PROJECT}:promoted`;
  const images = z.record(z.string(), z.unknown()).safeParse(sourceImages);
  if (sourceImages === undefined || !images.success) {
    throw new JiraImagesError(
      "PROMOTION_SOURCE_MISSING",
      `${where} takes ${pin.stage} from stack ${pin.fromStack}, which has no \`images\` output (not deployed yet, or not a ${PROJECT} stack). ` +
        `Fix: deploy it (npm run pipeline -- up --stack ${pin.fromStack}) or name the right stack in fromStack`,
    );
  }
  const entry = (stage: string): SourceImage => {
    const parsed = SourceImageSchema.safeParse(images.data[stage]);
    if (!parsed.success) {
      throw new JiraImagesError(
        "PROMOTION_SOURCE_MISSING",
        `${where}: stack ${pin.fromStack} exports no readable image for stage ${stage} (it exports: ${Object.keys(images.data).join(", ") || "none"}). ` +
          `Fix: deploy ${pin.fromStack} so that it builds ${stage}, then run \`${promoteHint(ctx)}\``,
      );
    }
    return parsed.data;
  };

  const promoted = entry(pin.stage);
  const inRegion = promoted.amis[region];
  if (inRegion !== pin.amiId) {
    const elsewhere = Object.entries(promoted.amis).find(([, ami]) => ami === pin.amiId)?.[0];
    const why =
      elsewhere !== undefined
        ? `that is its copy in ${elsewhere}, not in this stack's region ${region}`
        : inRegion === undefined
          ? `it has no copy in this stack's region ${region} (it has: ${Object.keys(promoted.amis).join(", ")}); add ${region} to ${pin.fromStack}'s amiRegions`
          : `its ${pin.stage} image in ${region} is ${inRegion}; ${pin.amiId} is not an image ${pin.fromStack} exports`;
    throw new JiraImagesError(
      "PROMOTION_AMI_UNKNOWN",
      `${where} pins ${pin.stage} ${pin.amiId} from ${pin.fromStack}, but ${why}. Fix: run \`${promoteHint(ctx)}\` to pin ${pin.fromStack}'s current image`,
    );
  }
  const tests = TestsSchema.safeParse(promoted.tests);
  if (!tests.success || !tests.data.passed) {
    throw new JiraImagesError(
      "PROMOTION_UNTESTED",
      `${where} pins ${pin.stage} ${pin.amiId} from ${pin.fromStack}, whose image tests ` +
        `${tests.success ? `did not pass (${tests.data.count} run)` : "never ran (no tests entry: built before image tests existed)"}. ` +
        `Fix: rebuild ${pin.stage} in ${pin.fromStack} until its tests pass, then run \`${promoteHint(ctx)}\``,
    );
  }

  const lineage: PromotedStage[] = [];
  for (let current: SourceImage | undefined = promoted; current !== undefined; ) {
    const amiId = current.amis[region];
    if (amiId === undefined) {
      throw new JiraImagesError(
        "PROMOTION_AMI_UNKNOWN",
        `${where}: ${pin.fromStack}'s ${current.stage} image, an ancestor of ${pin.stage}, has no copy in this stack's region ${region}. ` +
          `Fix: add ${region} to ${pin.fromStack}'s amiRegions, deploy it, then run \`${promoteHint(ctx)}\``,
      );
    }
    const ownTests = TestsSchema.safeParse(current.tests);
    lineage.unshift({
      stage: current.stage,
      amiId,
      entry: { ...current, promotedFrom: { stack: pin.fromStack, amiId, tests: ownTests.success ? ownTests.data : null } },
    });
    current = current.parentStage === null ? undefined : entry(current.parentStage);
  }

  const taken = new Set(lineage.map((s) => s.stage));
  const builds = ctx.stages.filter((s) => !taken.has(s.name));
  return { pin, tests: tests.data, lineage, builds };
}

/** How a preview announces a promotion: `jira: promoted from dev ami-…; custom-prod rebuilds`. */
export function describePromotion(promotion: Promotion): string {
  const { pin, tests } = promotion;
  const children = promotion.builds.filter((s) => s.parent === pin.stage).map((s) => s.name);
  return (
    `${pin.stage}: promoted from ${pin.fromStack} ${pin.amiId} (tests passed, ${tests.count}); ` +
    `${children.join(", ")} ${children.length === 1 ? "builds" : "build"} on it when it changes`
  );
}

/** The source stack's `images` output, read through a StackReference (undefined when it has none). */
export async function readSourceImages(fromStack: string, opts?: pulumi.CustomResourceOptions): Promise<unknown> {
  const reference = new pulumi.StackReference("promotion-source", { name: fromStack }, opts);
  const details = await reference.getOutputDetails("images");
  return details.value;
}

export interface PromotedImageArgs {
  promotion: Promotion;
  /** The stack that pins the images (the tag's key and value). */
  stack: string;
}

/**
 * The promoted image and its ancestors as this stack uses them: each AMI (in this stack's region)
 * gets the tag `jira-images:pinned-by:<stack>`, which retention honours, and is removed with it.
 */
export class PromotedImage extends pulumi.ComponentResource {
  readonly tags: aws.ec2.Tag[];

  constructor(name: string, args: PromotedImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("jira-images:promotion:PromotedImage", name, {}, opts);
    this.tags = args.promotion.lineage.map(
      (image) =>
        new aws.ec2.Tag(`${image.stage}-pinned-by-${args.stack}`, { resourceId: image.amiId, key: pinTagKey(args.stack), value: args.stack }, { parent: this }),
    );
    this.registerOutputs({ pinned: args.promotion.lineage.map((i) => i.amiId) });
  }
}
