/**
 * Removes the images of a replaced or destroyed stage: every region's AMI named in the stage's old
 * result, then the EBS snapshots behind it. Runs as the stage command's `delete` (./deregister-cli.ts);
 * EC2 is reached through `Ec2Layer` so that the rules here are tested without AWS.
 */
import type { StageResult } from "./result.ts";
import { MANAGED_BY, MANAGED_BY_TAG, STACK_TAG, STAGE_TAG, describePins, pinnedBy } from "../lifecycle/tags.ts";

export { MANAGED_BY, MANAGED_BY_TAG, STACK_TAG, STAGE_TAG };

export interface ImageRecord {
  imageId: string;
  /** The AWS account that owns the image. */
  ownerId: string;
  /** EBS snapshots of the image's block device mappings. */
  snapshotIds: string[];
  tags: Readonly<Record<string, string>>;
}

export interface SnapshotRecord {
  snapshotId: string;
  tags: Readonly<Record<string, string>>;
}

export interface Ec2Layer {
  /** The account of the credentials in use (sts:GetCallerIdentity). */
  callerAccount(region: string): Promise<string>;
  /** The image, or undefined when it no longer exists (never registered, or deregistered). */
  describeImage(region: string, imageId: string): Promise<ImageRecord | undefined>;
  /**
   * Snapshots of the account whose description names the image: AWS describes the snapshots of
   * CreateImage and CopyImage with the AMI ID. Finds what a run that deregistered the image but
   * failed on a snapshot left behind.
   */
  snapshotsOfImage(region: string, imageId: string): Promise<SnapshotRecord[]>;
  deregisterImage(region: string, imageId: string): Promise<void>;
  /** Resolves also when the snapshot is already gone. */
  deleteSnapshot(region: string, snapshotId: string): Promise<void>;
}

export interface DeregisterOutcome {
  /** One line per region that could not be cleaned up; empty on success. */
  failures: string[];
}

/** An image in the old result that is not this stack's image of this stage, or not the caller's: nothing is touched. */
export class DeregisterRefused extends Error {
  readonly details: string[];

  constructor(stage: string, details: string[]) {
    super(`DEREGISTER_REFUSED: stage ${stage}: not deregistering anything, an image is not this stack's ${stage} image in this account`);
    this.name = "DeregisterRefused";
    this.details = details;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Whose images the delete may remove; `stack` is undefined for a command recorded before images carried a stack tag. */
export interface Owner {
  stage: string;
  stack?: string;
}

function ownedBy(tags: Readonly<Record<string, string>>, owner: Owner): boolean {
  return (
    tags[STAGE_TAG] === owner.stage &&
    tags[MANAGED_BY_TAG] === MANAGED_BY &&
    (owner.stack === undefined || tags[STACK_TAG] === owner.stack)
  );
}

function describeTags(tags: Readonly<Record<string, string>>, owner: Owner): string {
  const keys = [STAGE_TAG, MANAGED_BY_TAG, ...(owner.stack !== undefined ? [STACK_TAG] : [])];
  const expected = [owner.stage, MANAGED_BY, ...(owner.stack !== undefined ? [owner.stack] : [])];
  return `has ${keys.map((k) => `${k}=${JSON.stringify(tags[k] ?? null)}`).join(", ")}, expected ${expected.map((e) => JSON.stringify(e)).join(", ")}`;
}

/** region -> AMI of a result; the top-level AMI is part of `amis` for the runner, kept for older results. */
function imagesOf(result: StageResult): Array<[string, string]> {
  const amis = new Map(Object.entries(result.amis));
  if (!amis.has(result.region)) amis.set(result.region, result.amiId);
  return [...amis.entries()].sort(([a], [b]) => a.localeCompare(b));
}

type Found = { region: string; imageId: string; image: ImageRecord | undefined };

/**
 * Looks every region's image up first and refuses (throws DeregisterRefused, deleting nothing)
 * when one of them is not tagged as this stack's image of this stage, or is owned by another
 * account than the caller's: a wrong ID in state must not cost someone else's image. Then
 * deregisters each image and deletes its snapshots; a region that fails does not stop the others,
 * and is reported in `failures`. `owner.stack` undefined (a delete recorded by an older version,
 * for images built before the stack tag) checks the stage tags and the account only.
 */
export async function deregisterStageImages(
  owner: string | Owner,
  result: StageResult,
  ec2: Ec2Layer,
  log: (line: string) => void,
): Promise<DeregisterOutcome> {
  const who: Owner = typeof owner === "string" ? { stage: owner } : owner;
  const stage = who.stage;
  if (result.stage !== stage) {
    throw new DeregisterRefused(stage, [`the old result is stage ${result.stage}'s`]);
  }
  const failures: string[] = [];
  const found: Found[] = [];
  for (const [region, imageId] of imagesOf(result)) {
    try {
      found.push({ region, imageId, image: await ec2.describeImage(region, imageId) });
    } catch (error) {
      failures.push(`DEREGISTER_FAILED: ${imageId} in ${region}: describing the image failed: ${errorText(error)}`);
    }
  }
  const existing = found.filter((f) => f.image !== undefined);
  const refusals = existing
    .filter((f) => !ownedBy(f.image!.tags, who))
    .map((f) => `${f.imageId} in ${f.region} ${describeTags(f.image!.tags, who)}`);
  if (existing.length > 0) {
    let account: string;
    try {
      account = await ec2.callerAccount(existing[0]!.region);
    } catch (error) {
      // Without the caller's account nothing can be checked, so nothing is touched.
      return { failures: [...failures, `DEREGISTER_FAILED: cannot tell the caller's account (sts:GetCallerIdentity): ${errorText(error)}`] };
    }
    for (const f of existing) {
      if (f.image!.ownerId !== account) refusals.push(`${f.imageId} in ${f.region} is owned by account ${f.image!.ownerId}, the caller is account ${account}`);
    }
  }
  if (refusals.length > 0) throw new DeregisterRefused(stage, refusals);
  if (who.stack === undefined && existing.length > 0) {
    log(`no --stack given (a delete recorded before images carried ${STACK_TAG}): checked the stage tags and the account only`);
  }

  for (const { region, imageId, image } of found) {
    // Another stack uses it (a promotion): it stays, and so does this stage's delete (it succeeds).
    if (image !== undefined && pinnedBy(image.tags).length > 0) {
      log(`kept ${imageId} in ${region}: ${describePins(image.tags)}; not deregistered. prune removes it once no stack pins or uses it`);
      continue;
    }
    try {
      let snapshotIds: string[];
      if (image === undefined) {
        snapshotIds = (await ec2.snapshotsOfImage(region, imageId)).filter((s) => ownedBy(s.tags, who)).map((s) => s.snapshotId);
        log(`${imageId} in ${region} is already deregistered` + (snapshotIds.length > 0 ? `; ${snapshotIds.length} snapshot(s) left` : ""));
      } else {
        await ec2.deregisterImage(region, imageId);
        log(`deregistered ${imageId} in ${region}`);
        snapshotIds = image.snapshotIds;
      }
      for (const snapshotId of snapshotIds) {
        await ec2.deleteSnapshot(region, snapshotId);
        log(`deleted snapshot ${snapshotId} of ${imageId} in ${region}`);
      }
    } catch (error) {
      failures.push(`DEREGISTER_FAILED: ${imageId} in ${region}: ${errorText(error)}`);
    }
  }
  return { failures };
}
