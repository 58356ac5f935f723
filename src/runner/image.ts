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
