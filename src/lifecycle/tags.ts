/**
 * The tags that say whose an image is and who still needs it: the lineage tags that
 * packer/common/source.pkr.hcl puts on every AMI and snapshot a stage builds, and the pin tag a
 * stack puts on another stack's image it uses (a promotion). Pure: no AWS here.
 */

export const STAGE_TAG = "jira-images:stage";
/** The Pulumi stack whose stage built the image (dev's and prod's images share stage names and account). */
export const STACK_TAG = "jira-images:stack";
export const MANAGED_BY_TAG = "jira-images:managed-by";
export const MANAGED_BY = "packer";
export const BUILD_TIME_TAG = "jira-images:build-time";
export const INPUTS_HASH_TAG = "jira-images:inputs-hash";
/**
 * `jira-images:pinned-by:<stack>` on an AMI: that stack uses the image (a promotion). No
 * deprecation, deregistration, prune or sweep may touch a pinned image.
 */
export const PINNED_BY_PREFIX = "jira-images:pinned-by:";

export type Tags = Readonly<Record<string, string>>;

/** EC2's tag list as a map (absent keys and values become ""). */
export function tagMap(tags: ReadonlyArray<{ Key?: string | undefined; Value?: string | undefined }> | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
}

/**
 * The stacks that pin an image, sorted: the tag's value (the fully qualified or plain stack name)
 * or, when it is empty, the stack named in the key.
 */
export function pinnedBy(tags: Tags): string[] {
  return Object.entries(tags)
    .filter(([key]) => key.startsWith(PINNED_BY_PREFIX) && key.length > PINNED_BY_PREFIX.length)
    .map(([key, value]) => (value.trim() !== "" ? value.trim() : key.slice(PINNED_BY_PREFIX.length)))
    .sort();
}

/** "pinned by stack prod (tag jira-images:pinned-by:prod)": names the pinning stacks and how to unpin. */
export function describePins(tags: Tags): string {
  const keys = Object.keys(tags)
    .filter((key) => key.startsWith(PINNED_BY_PREFIX) && key.length > PINNED_BY_PREFIX.length)
    .sort();
  const stacks = pinnedBy(tags);
  return `pinned by stack${stacks.length > 1 ? "s" : ""} ${stacks.join(", ")} (tag${keys.length > 1 ? "s" : ""} ${keys.join(", ")})`;
}

/** An image this project built: tagged `jira-images:managed-by=packer`, with the stack and stage if given. */
export function isProjectImage(tags: Tags, owner: { stack?: string; stage?: string } = {}): boolean {
  return (
    tags[MANAGED_BY_TAG] === MANAGED_BY &&
    (owner.stack === undefined || tags[STACK_TAG] === owner.stack) &&
    (owner.stage === undefined || tags[STAGE_TAG] === owner.stage)
  );
}
