/**
 * Which of a stack's images `prune` removes, and why each other one stays. Pure: the images,
 * the references and the clock come in, decisions go out; no AWS here.
 */
import { BUILD_TIME_TAG, STAGE_TAG, describePins, pinnedBy } from "./tags.ts";
import type { ProjectImage } from "./ec2.ts";

export const DAY_MS = 86_400_000;

export interface RetentionRules {
  /** Keep the newest `keep` images of each stage in each region. */
  keep: number;
  /** Keep every image younger than this many days. */
  olderThanDays: number;
  now: Date;
}

/** imageId -> what uses it ("stack prod: stack outputs", "instance i-0abc (running)", ...). */
export type ImageReferences = ReadonlyMap<string, readonly string[]>;

export type Decision = { image: ProjectImage; action: "remove" } | { image: ProjectImage; action: "keep"; reasons: string[] };

/** When the image was built: the lineage tag when it parses, else EC2's creation date (a copy's is later). */
export function builtAt(image: ProjectImage): number {
  const tagged = Date.parse(image.tags[BUILD_TIME_TAG] ?? "");
  return Number.isNaN(tagged) ? Date.parse(image.creationDate) || 0 : tagged;
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * The rules, in the order the report gives reasons: an image is kept when it is pinned, used by
 * anything in `references` (any stack's state or stack file, an instance, a launch template
 * version), still being created, scheduled for deprecation later, among the newest `keep` of its
 * stage in its region, or younger than `olderThanDays`. Everything else is removed.
 */
export function decideRetention(images: readonly ProjectImage[], rules: RetentionRules, references: ImageReferences): Decision[] {
  const rank = new Map<ProjectImage, number>();
  const groups = new Map<string, ProjectImage[]>();
  for (const image of images) {
    const key = `${image.region}\u0000${image.tags[STAGE_TAG] ?? ""}`;
    groups.set(key, [...(groups.get(key) ?? []), image]);
  }
  for (const group of groups.values()) {
    group
      .slice()
      .sort((a, b) => builtAt(b) - builtAt(a) || b.imageId.localeCompare(a.imageId))
      .forEach((image, i) => rank.set(image, i));
  }
  const now = rules.now.getTime();
  const cutoff = now - rules.olderThanDays * DAY_MS;

  return [...images]
    .sort((a, b) => a.region.localeCompare(b.region) || (a.tags[STAGE_TAG] ?? "").localeCompare(b.tags[STAGE_TAG] ?? "") || builtAt(b) - builtAt(a))
    .map((image): Decision => {
      const reasons: string[] = [];
      if (pinnedBy(image.tags).length > 0) reasons.push(describePins(image.tags));
      for (const use of references.get(image.imageId) ?? []) reasons.push(`used by ${use}`);
      if (image.state === "pending") reasons.push("still being created");
      const deprecation = Date.parse(image.deprecationTime ?? "");
      if (!Number.isNaN(deprecation) && deprecation > now) reasons.push(`deprecation scheduled for ${image.deprecationTime} (removed after it)`);
      const position = rank.get(image)!;
      if (position < rules.keep) reasons.push(`newest ${position + 1} of ${rules.keep} kept of stage ${image.tags[STAGE_TAG] ?? "?"} in ${image.region}`);
      const built = builtAt(image);
      if (built > cutoff) reasons.push(`built ${day(built)}, younger than ${rules.olderThanDays} days`);
      return reasons.length > 0 ? { image, action: "keep", reasons } : { image, action: "remove" };
    });
}

/** AMI IDs as EC2 writes them. */
const AMI_ID = /\bami-[0-9a-f]{8,17}\b/g;

/** Every AMI ID in a value (a stack export, a config value), whatever its shape. */
export function amiIdsIn(value: unknown): string[] {
  return [...new Set(JSON.stringify(value ?? null).match(AMI_ID) ?? [])];
}

interface DeploymentResource {
  urn?: string;
  type?: string;
  inputs?: unknown;
  outputs?: unknown;
}

/**
 * The AMIs a stack's exported state names, with where: the stack's outputs, or the resource (an
 * instance's `ami`, a stage command's result, an old command still waiting for its delete step).
 * Values Pulumi stores as secrets stay encrypted in an export and are not seen: this project
 * stores none.
 */
export function referencesInDeployment(stack: string, deployment: unknown): Array<[string, string]> {
  const resources = ((deployment as { deployment?: { resources?: DeploymentResource[] } } | null)?.deployment?.resources ?? []) as DeploymentResource[];
  const found: Array<[string, string]> = [];
  for (const resource of resources) {
    const where = resource.type === "pulumi:pulumi:Stack" ? "stack outputs" : (resource.urn?.split("::").slice(-2).join(" ") ?? "a resource");
    for (const id of amiIdsIn({ inputs: resource.inputs, outputs: resource.outputs })) found.push([id, `stack ${stack}'s state (${where})`]);
  }
  return found;
}

/** Adds `[imageId, reason]` pairs to a references map (no duplicate reasons). */
export function addReferences(into: Map<string, string[]>, pairs: Iterable<readonly [string, string]>): void {
  for (const [id, reason] of pairs) {
    const list = into.get(id) ?? [];
    if (!list.includes(reason)) list.push(reason);
    into.set(id, list);
  }
}

export interface SnapshotSize {
  fullSizeBytes: number | undefined;
  volumeSizeGiB: number;
}

/**
 * GiB of snapshot storage: the full size of a snapshot's data where EC2 reports it, else its
 * volume's size. EBS bills the blocks a snapshot does not share with another, so the bill can
 * shrink by less.
 */
export function snapshotGiB(sizes: readonly SnapshotSize[]): number {
  return sizes.reduce((sum, s) => sum + (s.fullSizeBytes !== undefined ? s.fullSizeBytes / 1024 ** 3 : s.volumeSizeGiB), 0);
}

/** AMI IDs a snapshot's description names ("Created by CreateImage(i-…) for ami-… ", "Copied for DestinationAmi ami-… from SourceAmi ami-…"). */
export function imagesInDescription(description: string): string[] {
  return [...new Set(description.match(AMI_ID) ?? [])];
}
