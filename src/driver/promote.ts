import { z } from "zod";
import { JiraImagesError } from "../errors.ts";
import type { PromotedPin } from "../config.ts";
import { AmiIdSchema } from "../runner/result.ts";

export interface TestResult {
  passed: boolean;
  count: number;
}

/** What the source stack's outputs say about the image to promote. */
export interface Promotion {
  /** What `jira-images:promoted` of the target stack gets: a pin with its AMI. */
  pin: Required<PromotedPin>;
  tests: TestResult;
  /** The promoted image's ancestors in the source stack, root first (base for jira), in the target's region. */
  ancestors: Array<{ stage: string; amiId: string }>;
}

const TestsSchema = z.object({ passed: z.boolean(), count: z.number().int().nonnegative() });

/** The part of a stack's `images` output entry that a promotion reads. */
const ImageEntrySchema = z.object({
  amiId: AmiIdSchema,
  amis: z.record(z.string(), AmiIdSchema).default({}),
  parentStage: z.string().nullable().optional(),
  parentAmi: z.string().optional(),
});

type ImageEntry = z.infer<typeof ImageEntrySchema>;

function imagesOf(outputs: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const images = outputs.images;
  return typeof images === "object" && images !== null && !Array.isArray(images) ? (images as Record<string, unknown>) : {};
}

function upHint(stack: string): string {
  return `\`npm run pipeline -- up --stack ${stack}\``;
}

/**
 * Checks that `fromStack`'s outputs hold a tested image of `stage` with a copy in `region` (the
 * target stack's), and returns the pin to write. Refuses with `promote-*` errors naming the fix. Pure.
 */
export function choosePromotion(
  outputs: Readonly<Record<string, unknown>>,
  request: { fromStack: string; stage: string; region: string },
): Promotion {
  const { fromStack, stage, region } = request;
  const images = imagesOf(outputs);
  const raw = images[stage];
  const entry = ImageEntrySchema.safeParse(raw);
  if (raw === undefined || !entry.success) {
    const listed = Object.keys(images).sort().join(", ") || "none";
    const why = raw === undefined ? `has no ${stage} image in its \`images\` output (images: ${listed})` : `has an \`images.${stage}\` output that is not an image entry (${entry.error!.issues[0]!.message})`;
    throw new JiraImagesError(
      "promote-no-image",
      `stack ${fromStack} ${why}; build it there first with ${upHint(fromStack)}, then promote again`,
    );
  }
  const image = entry.data;
  const shown = image.amis[region] ?? image.amiId;
  const tests = TestsSchema.safeParse((raw as { tests?: unknown }).tests);
  if (!tests.success) {
    throw new JiraImagesError(
      "promote-untested",
      `stack ${fromStack}'s ${stage} image ${shown} has no image test result (built before image tests existed, or its \`tests\` entry is unreadable); ` +
        `rebuild it with ${upHint(fromStack)} (the build runs the ${stage} image tests and records the result), then promote again`,
    );
  }
  if (!tests.data.passed) {
    throw new JiraImagesError(
      "promote-tests-failed",
      `stack ${fromStack}'s ${stage} image ${shown} did not pass its image tests (${tests.data.count} run); ` +
        `fix the ${stage} stage, rebuild it with ${upHint(fromStack)} and promote the new image`,
    );
  }
  const amiId = image.amis[region];
  if (amiId === undefined) {
    throw new JiraImagesError(
      "promote-region-missing",
      `stack ${fromStack}'s ${stage} image ${image.amiId} has no copy in ${region}, the target stack's region (it has: ${Object.keys(image.amis).sort().join(", ") || "none"}); ` +
        `add ${region} to jira-images:amiRegions of ${fromStack}, run ${upHint(fromStack)}, then promote again`,
    );
  }
  return { pin: { fromStack, stage, amiId }, tests: tests.data, ancestors: ancestorsOf(images, image, region) };
}

/** The promoted image's lineage above it in the source stack, root first. */
function ancestorsOf(images: Record<string, unknown>, image: ImageEntry, region: string): Array<{ stage: string; amiId: string }> {
  const chain: Array<{ stage: string; amiId: string }> = [];
  const seen = new Set<string>();
  for (let child = image; child.parentStage && !seen.has(child.parentStage); ) {
    const name = child.parentStage;
    seen.add(name);
    const parent = ImageEntrySchema.safeParse(images[name]);
    // The child's parentAmi is the image it was built from (in the source's region).
    const amiId = (parent.success ? parent.data.amis[region] : undefined) ?? child.parentAmi;
    if (amiId === undefined) break;
    chain.unshift({ stage: name, amiId });
    if (!parent.success) break;
    child = parent.data;
  }
  return chain;
}

/** A stage of the target stack, as declared (name and parent). */
export interface DeclaredStage {
  name: string;
  parent?: string | undefined;
}

/** What the next `up` of the target stack does with one of its stages. */
export interface StageEffect {
  stage: string;
  rebuild: boolean;
  text: string;
}

/**
 * What the next `up` of `targetStack` does once `promotion` is pinned: the promoted stage and its
 * ancestors come from the source stack, its descendants rebuild when their parent AMI changes.
 * `targetImages` is the target's current `images` output (undefined: the stack has no state yet). Pure.
 */
export function promotionEffects(
  promotion: Promotion,
  stages: readonly DeclaredStage[],
  targetStack: string,
  targetImages: Readonly<Record<string, unknown>> | undefined,
): StageEffect[] {
  const { fromStack, stage, amiId } = promotion.pin;
  const ancestors = new Map(promotion.ancestors.map((a) => [a.stage, a.amiId]));
  /** The AMI each stage hands to its children after the promotion; undefined while it rebuilds. */
  const handsOn = new Map<string, string | undefined>([...ancestors, [stage, amiId]]);
  const effects: StageEffect[] = [];
  for (const declared of stages) {
    if (declared.name === stage) {
      effects.push({ stage: stage, rebuild: false, text: `promoted from ${fromStack} ${amiId} (tests passed, ${promotion.tests.count})` });
      continue;
    }
    const ancestor = ancestors.get(declared.name);
    if (ancestor !== undefined) {
      effects.push({ stage: declared.name, rebuild: false, text: `${fromStack}'s ${ancestor} (lineage of the promoted ${stage}; ${targetStack} does not build it)` });
      continue;
    }
    if (declared.parent === undefined || !handsOn.has(declared.parent)) continue;
    const current = targetImages?.[declared.name] as { parentAmi?: unknown; amiId?: unknown } | undefined;
    const before = typeof current?.parentAmi === "string" ? current.parentAmi : undefined;
    const parentAmi = handsOn.get(declared.parent);
    let text: string;
    if (parentAmi === undefined) text = `rebuilds (parent ${declared.parent} rebuilds)`;
    else if (before === undefined) text = `builds (no ${declared.name} image in ${targetStack}'s state yet; parent AMI ${parentAmi})`;
    else if (before === parentAmi) text = `keeps ${typeof current?.amiId === "string" ? current.amiId : "its image"} (built on ${parentAmi} already)`;
    else text = `rebuilds (parent AMI changes from ${before} to ${parentAmi})`;
    const rebuild = !text.startsWith("keeps");
    handsOn.set(declared.name, rebuild ? undefined : (current?.amiId as string | undefined));
    effects.push({ stage: declared.name, rebuild, text });
  }
  return effects;
}

/** The effects one per line, stage names aligned. */
export function renderEffects(effects: readonly StageEffect[]): string[] {
  const width = Math.max(0, ...effects.map((e) => e.stage.length));
  return effects.map((e) => `  ${e.stage.padEnd(width)}  ${e.text}`);
}

/** The effects on one line: "jira: promoted from dev ami-…; custom-prod rebuilds (…)". */
export function effectsInOneLine(effects: readonly StageEffect[]): string {
  return effects.map((e) => `${e.stage}: ${e.text}`).join("; ");
}
