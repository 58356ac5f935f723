/**
 * `npm run pipeline -- prune`: a stack's old images, found by their lineage tags in every region
 * the stack uses, removed (with `apply`) unless something still needs them (./retention.ts).
 * A dry run changes nothing. With `apply` each image is deregistered and then its snapshots are
 * deleted; one that fails does not stop the others, and a rerun finishes the job: an image
 * already gone is fine, and snapshots whose image is gone (a run that stopped half-way) are
 * found by their tags and deleted too.
 */
import type { EC2Client } from "@aws-sdk/client-ec2";
import {
  deleteSnapshot,
  deregisterImage,
  describeSnapshots,
  errorText,
  existingImageIds,
  instanceImageUses,
  launchTemplateImageUses,
  listProjectImages,
  listProjectSnapshots,
  type ProjectImage,
  type SnapshotRecord,
} from "./ec2.ts";
import { addReferences, builtAt, decideRetention, imagesInDescription, snapshotGiB, type Decision } from "./retention.ts";
import { STAGE_TAG } from "./tags.ts";

export interface PruneRequest {
  stack: string;
  /** The stack's region and its amiRegions. */
  regions: readonly string[];
  keep: number;
  olderThanDays: number;
  apply: boolean;
  now: Date;
}

export interface PruneDeps {
  client: (region: string) => EC2Client;
  /** AMI -> what references it outside EC2: every stack's state, the stack files. Throws when that cannot be known. */
  references: () => Promise<Map<string, string[]>>;
  /** One report line (stdout). */
  out: (line: string) => void;
}

export interface PruneOutcome {
  /** One line per image or snapshot that could not be removed (apply only). */
  failures: string[];
  removedImages: number;
  removedSnapshots: number;
}

interface Leftover {
  region: string;
  snapshot: SnapshotRecord;
  images: string[];
}

const gib = (n: number): string => `${n.toFixed(1)} GiB`;

function describeImage(image: ProjectImage): string {
  return `${image.imageId} ${image.region} ${image.tags[STAGE_TAG] ?? "?"} (built ${new Date(builtAt(image)).toISOString().slice(0, 10)}, ${image.name})`;
}

export async function prune(request: PruneRequest, deps: PruneDeps): Promise<PruneOutcome> {
  const { out } = deps;
  // Outside EC2 first: without knowing what the stacks use, nothing may go.
  const references = await deps.references();

  const images: ProjectImage[] = [];
  const leftovers: Leftover[] = [];
  for (const region of request.regions) {
    const client = deps.client(region);
    const found = await listProjectImages(client, region, { stack: request.stack });
    images.push(...found);
    addReferences(references, (await instanceImageUses(client)).map((u) => [u.imageId, u.by] as const));
    const templates = await launchTemplateImageUses(client);
    addReferences(references, templates.uses.map((u) => [u.imageId, u.by] as const));
    for (const line of templates.unresolved) out(`  note: ${line} (an SSM parameter: not resolved; make sure it names none of the images below)`);

    const snapshots = await listProjectSnapshots(client, { stack: request.stack });
    const named = [...new Set(snapshots.flatMap((s) => imagesInDescription(s.description)))];
    const existing = await existingImageIds(client, named);
    for (const snapshot of snapshots) {
      const ids = imagesInDescription(snapshot.description);
      if (ids.length > 0 && ids.every((id) => !existing.has(id))) leftovers.push({ region, snapshot, images: ids });
    }
  }

  const decisions = decideRetention(images, request, references);
  const removals = decisions.filter((d): d is Extract<Decision, { action: "remove" }> => d.action === "remove").map((d) => d.image);
  const sizes = new Map<string, SnapshotRecord>();
  for (const region of request.regions) {
    const ids = removals.filter((i) => i.region === region).flatMap((i) => i.snapshots.map((s) => s.snapshotId));
    if (ids.length > 0) for (const s of await describeSnapshots(deps.client(region), ids)) sizes.set(s.snapshotId, s);
  }
  const sizeOf = (image: ProjectImage) =>
    snapshotGiB(image.snapshots.map((s) => sizes.get(s.snapshotId) ?? { fullSizeBytes: undefined, volumeSizeGiB: s.volumeSizeGiB }));

  out(
    `prune: stack ${request.stack}, regions ${request.regions.join(", ")}: keeping the newest ${request.keep} of each stage per region, ` +
      `everything younger than ${request.olderThanDays} days, and every image in use or pinned` +
      (request.apply ? "" : " (dry run)"),
  );
  for (const decision of decisions) {
    if (decision.action === "remove") out(`  remove ${describeImage(decision.image)}: ${decision.image.snapshots.length} snapshot(s), ${gib(sizeOf(decision.image))}`);
    else out(`  keep   ${describeImage(decision.image)}: ${decision.reasons.join("; ")}`);
  }
  for (const l of leftovers) {
    out(`  remove snapshot ${l.snapshot.snapshotId} ${l.region}: its image ${l.images.join(", ")} is gone, ${gib(snapshotGiB([l.snapshot]))}`);
  }
  const freed = removals.reduce((sum, image) => sum + sizeOf(image), 0) + snapshotGiB(leftovers.map((l) => l.snapshot));
  const snapshotCount = removals.reduce((n, i) => n + i.snapshots.length, 0) + leftovers.length;
  const summary = `${removals.length} image(s) and ${snapshotCount} snapshot(s), up to ${gib(freed)} of snapshot storage (full snapshot sizes; EBS bills blocks a snapshot shares with no other, so the saving can be less)`;
  if (!request.apply) {
    out(`prune: dry run, nothing changed: would remove ${summary}; ${decisions.length - removals.length} image(s) kept. Run again with --apply to remove them.`);
    return { failures: [], removedImages: 0, removedSnapshots: 0 };
  }

  const failures: string[] = [];
  let removedImages = 0;
  let removedSnapshots = 0;
  for (const image of removals) {
    const client = deps.client(image.region);
    try {
      const result = await deregisterImage(client, image.imageId);
      removedImages++;
      out(`  ${result === "gone" ? "already gone" : "deregistered"}: ${image.imageId} in ${image.region}`);
    } catch (error) {
      failures.push(`${image.imageId} in ${image.region}: deregistering failed: ${errorText(error)}`);
      continue;
    }
    for (const { snapshotId } of image.snapshots) {
      try {
        await deleteSnapshot(client, snapshotId);
        removedSnapshots++;
        out(`  deleted snapshot ${snapshotId} of ${image.imageId} in ${image.region}`);
      } catch (error) {
        failures.push(`snapshot ${snapshotId} of ${image.imageId} in ${image.region}: deleting failed: ${errorText(error)}`);
      }
    }
  }
  for (const { region, snapshot } of leftovers) {
    try {
      await deleteSnapshot(deps.client(region), snapshot.snapshotId);
      removedSnapshots++;
      out(`  deleted snapshot ${snapshot.snapshotId} in ${region}`);
    } catch (error) {
      failures.push(`snapshot ${snapshot.snapshotId} in ${region}: deleting failed: ${errorText(error)}`);
    }
  }
  out(`prune: removed ${removedImages} image(s) and ${removedSnapshots} snapshot(s)` + (failures.length > 0 ? `; ${failures.length} failed:` : "."));
  for (const line of failures) out(`  FAILED ${line}`);
  return { failures, removedImages, removedSnapshots };
}
