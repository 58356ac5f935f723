import type { Artifact, BuildStream } from "../machine-readable.ts";
import { AmiIdSchema, RegionSchema } from "./result.ts";

/** One machine image: the same AMI copied to one or more regions. */
export interface StageImage {
  /** The build that made it, e.g. `amazon-ebs.jira`. */
  target: string;
  builderId?: string;
  /** The first region listed in Packer's artifact id, and its AMI. */
  region: string;
  amiId: string;
  amis: Record<string, string>;
}

export interface RegionAmi {
  region: string;
  amiId: string;
}

/**
 * Parses an AMI artifact id (`us-east-1:ami-1` or `us-east-1:ami-1,eu-west-1:ami-2`). Returns null
 * unless every part is a valid `region:ami` pair, so a partial or foreign id never yields an AMI.
 */
export function parseAmiArtifactId(id: string): RegionAmi[] | null {
  const pairs: RegionAmi[] = [];
  const seen = new Set<string>();
  for (const part of id.split(",")) {
    const colon = part.indexOf(":");
    if (colon < 0) return null;
    const region = part.slice(0, colon).trim();
    const amiId = part.slice(colon + 1).trim();
    if (!RegionSchema.safeParse(region).success || !AmiIdSchema.safeParse(amiId).success) return null;
    // One region with two different AMIs is not an image Packer can make.
    if (seen.has(region)) return null;
    seen.add(region);
    pairs.push({ region, amiId });
  }
  return pairs.length > 0 ? pairs : null;
}

/** The valid `region:ami` pairs of an artifact id, whatever else it holds (for reporting what exists). */
export function validAmiPairs(id: string): RegionAmi[] {
  const pairs: RegionAmi[] = [];
  for (const part of id.split(",")) {
    const colon = part.indexOf(":");
    if (colon < 0) continue;
    const region = part.slice(0, colon).trim();
    const amiId = part.slice(colon + 1).trim();
    if (RegionSchema.safeParse(region).success && AmiIdSchema.safeParse(amiId).success) pairs.push({ region, amiId });
  }
  return pairs;
}

/** An AMI that exists but that no state records; `region` is undefined when the log never named it. */
export interface LeftImage {
  amiId: string;
  region?: string;
}

/**
 * Every AMI that a failed run's log says was made and not removed again: the artifacts' valid
 * pairs (also of ids mixing valid and invalid pairs), the amazon plugin's "AMI" line (AMI: ami-...),
 * `Adding tags to AMI (...)` and "AMIs were created" lines, and the manifest's AMIs; minus the
 * ones Packer's cleanup deregistered. the "AMI" line names the image in the build region when the caller knows it.
 */
export function imagesLeftBehind(
  stream: Pick<BuildStream, "artifacts" | "amiMentions" | "removedAmis">,
  options: { buildRegion?: string; manifestPairs?: RegionAmi[] } = {},
): LeftImage[] {
  const found = new Map<string, LeftImage>();
  const add = (amiId: string, region: string | undefined) => {
    const known = found.get(amiId);
    if (known === undefined) found.set(amiId, region === undefined ? { amiId } : { amiId, region });
    else if (known.region === undefined && region !== undefined) known.region = region;
  };
  for (const artifact of stream.artifacts) {
    for (const pair of validAmiPairs(artifact.id ?? "")) add(pair.amiId, pair.region);
  }
  for (const pair of options.manifestPairs ?? []) add(pair.amiId, pair.region);
  for (const mention of stream.amiMentions) {
    add(mention.amiId, mention.how === "created" ? options.buildRegion : mention.region);
  }
  for (const removed of stream.removedAmis) found.delete(removed);
  return [...found.values()];
}

/** How a user finds and removes (or keeps) images that no state records. */
export function leftImagesAdvice(images: readonly LeftImage[], candidateRegions: readonly string[]): string[] {
  const where = (image: LeftImage) =>
    image.region !== undefined
      ? `${image.region}:${image.amiId}`
      : `${image.amiId} (region not in the log; one of ${candidateRegions.length > 0 ? candidateRegions.join(", ") : "the build's regions"})`;
  const regionFlag = (image: LeftImage) => (image.region !== undefined ? `--region ${image.region} ` : "--region <region> ");
  return [
    `orphaned images: ${images.map(where).join(", ")}`,
    "these images exist in AWS but are in no stack state: the next up builds new ones and nothing removes these",
    ...images.map(
      (image) => `remove: aws ec2 deregister-image ${regionFlag(image)}--image-id ${image.amiId} --delete-associated-snapshots`,
    ),
    "or keep one: it is an ordinary private AMI, usable by its ID; the stack does not adopt it, so remove it yourself when done",
  ];
}

/** An image's identity: its region:AMI pairs in a fixed order, however Packer or the manifest listed them. */
export function amiSetKey(amis: Record<string, string>): string {
  return Object.entries(amis)
    .map(([region, ami]) => `${region}:${ami}`)
    .sort()
    .join(",");
}

export type ImageSelection =
  | { kind: "one"; image: StageImage }
  /** No artifact is an AMI; `artifacts` are whatever Packer did produce. */
  | { kind: "none"; artifacts: Artifact[] }
  /** More than one distinct image: a stage must produce exactly one. */
  | { kind: "several"; images: StageImage[] };

/**
 * Picks the stage's image out of the parsed stream. The manifest post-processor repeats a build's
 * artifact (same builder, same id), which is one image; different AMIs are separate images.
 */
export function selectStageImage(stream: Pick<BuildStream, "artifacts">): ImageSelection {
  const images = new Map<string, StageImage>();
  for (const artifact of stream.artifacts) {
    if (artifact.id === undefined) continue;
    const pairs = parseAmiArtifactId(artifact.id);
    if (!pairs) continue;
    const amis = Object.fromEntries(pairs.map((p) => [p.region, p.amiId]));
    const key = amiSetKey(amis);
    if (images.has(key)) continue;
    const first = pairs[0]!;
    images.set(key, {
      target: artifact.target,
      ...(artifact.builderId !== undefined ? { builderId: artifact.builderId } : {}),
      region: first.region,
      amiId: first.amiId,
      amis,
    });
  }
  const found = [...images.values()];
  if (found.length === 1) return { kind: "one", image: found[0]! };
  if (found.length === 0) return { kind: "none", artifacts: stream.artifacts };
  return { kind: "several", images: found };
}

export function describeImage(image: StageImage): string {
  const amis = Object.entries(image.amis)
    .map(([region, ami]) => `${region}:${ami}`)
    .join(", ");
  return `${image.target || "(no build name)"} -> ${amis}`;
}
