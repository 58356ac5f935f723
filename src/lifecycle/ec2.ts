/**
 * EC2 for the image lifecycle commands (the stage command's delete step, `prune`, `sweep`): one
 * SDK v3 client per region with adaptive retries (client-side rate limiting, so a throttled
 * account slows down instead of failing), the SDK's paginators for every listing, and the
 * project's images by their lineage tags. Credentials come from the SDK's standard chain only.
 */
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  EC2Client,
  EnableImageDeprecationCommand,
  paginateDescribeImages,
  paginateDescribeInstances,
  paginateDescribeLaunchTemplates,
  paginateDescribeLaunchTemplateVersions,
  paginateDescribeSnapshots,
  type EC2ClientConfig,
  type Filter,
  type Image,
} from "@aws-sdk/client-ec2";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { MANAGED_BY, MANAGED_BY_TAG, STACK_TAG, STAGE_TAG, tagMap, type Tags } from "./tags.ts";

// The SDK warns on Node < 22 through process.emitWarning, a stderr line without our prefix. Node 20
// is this project's floor (the pinned Pulumi SDK's), and the lock file pins an SDK that runs on it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/**
 * Retries of every lifecycle client: "adaptive" adds a client-side token bucket to the standard
 * mode's backoff, which EC2's request throttling (RequestLimitExceeded) needs on busy accounts.
 */
export const RETRY_CONFIG = { retryMode: "adaptive", maxAttempts: 10 } as const satisfies Partial<EC2ClientConfig>;

/** Client settings shared by every region (tests pass an endpoint and credentials, users nothing). */
export type SharedClientConfig = Omit<EC2ClientConfig, "region">;

/** One EC2 client per region, created on first use; `destroy()` closes their sockets. */
export class RegionalEc2 {
  private readonly clients = new Map<string, EC2Client>();

  constructor(private readonly shared: SharedClientConfig = {}) {}

  client(region: string): EC2Client {
    let client = this.clients.get(region);
    if (client === undefined) {
      client = new EC2Client({ ...RETRY_CONFIG, ...this.shared, region });
      this.clients.set(region, client);
    }
    return client;
  }

  destroy(): void {
    for (const client of this.clients.values()) client.destroy();
    this.clients.clear();
  }
}

/** The account of the credentials in use (sts:GetCallerIdentity). */
export async function callerAccount(region: string, shared: Pick<SharedClientConfig, "endpoint" | "credentials"> = {}): Promise<string> {
  const sts = new STSClient({ ...RETRY_CONFIG, endpoint: shared.endpoint, credentials: shared.credentials, region });
  try {
    const { Account } = await sts.send(new GetCallerIdentityCommand({}));
    if (!Account) throw new Error("sts:GetCallerIdentity returned no account");
    return Account;
  } finally {
    sts.destroy();
  }
}

/** What EC2 answers for an image or snapshot that does not exist (any more). */
const GONE = new Set(["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound"]);

export function isGone(error: unknown): boolean {
  return error instanceof Error && GONE.has(error.name);
}

/** "Name: message" of an SDK error (its code and AWS's text), for report lines. */
export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export interface ImageSnapshot {
  snapshotId: string;
  /** The size of the volume the snapshot was taken of (the block device mapping's VolumeSize). */
  volumeSizeGiB: number;
}

/** An AMI as the lifecycle rules see it. */
export interface ProjectImage {
  region: string;
  imageId: string;
  name: string;
  ownerId: string;
  /** ISO 8601, as EC2 reports it. */
  creationDate: string;
  /** available, pending, failed, disabled, ... */
  state: string;
  /** When EC2 deprecates (or deprecated) the image; undefined when not set. */
  deprecationTime: string | undefined;
  tags: Tags;
  snapshots: ImageSnapshot[];
}

export function projectImage(region: string, image: Image): ProjectImage {
  return {
    region,
    imageId: image.ImageId ?? "",
    name: image.Name ?? "",
    ownerId: image.OwnerId ?? "",
    creationDate: image.CreationDate ?? "",
    state: image.State ?? "",
    deprecationTime: image.DeprecationTime,
    tags: tagMap(image.Tags),
    snapshots: (image.BlockDeviceMappings ?? []).flatMap((m) =>
      m.Ebs?.SnapshotId ? [{ snapshotId: m.Ebs.SnapshotId, volumeSizeGiB: m.Ebs.VolumeSize ?? 0 }] : [],
    ),
  };
}

function lineageFilters(owner: { stack?: string; stage?: string }): Filter[] {
  return [
    { Name: `tag:${MANAGED_BY_TAG}`, Values: [MANAGED_BY] },
    ...(owner.stack !== undefined ? [{ Name: `tag:${STACK_TAG}`, Values: [owner.stack] }] : []),
    ...(owner.stage !== undefined ? [{ Name: `tag:${STAGE_TAG}`, Values: [owner.stage] }] : []),
  ];
}

/**
 * This project's AMIs in a region, owned by the caller's account, found by their lineage tags
 * (`jira-images:managed-by=packer`, and the stack's and stage's tags when given); deprecated and
 * disabled images included, deregistered ones not.
 */
export async function listProjectImages(client: EC2Client, region: string, owner: { stack?: string; stage?: string } = {}): Promise<ProjectImage[]> {
  const images: ProjectImage[] = [];
  const pages = paginateDescribeImages(
    { client, pageSize: 1000 },
    { Owners: ["self"], Filters: lineageFilters(owner), IncludeDeprecated: true, IncludeDisabled: true },
  );
  for await (const page of pages) {
    for (const image of page.Images ?? []) {
      if (image.ImageId && image.State !== "deregistered") images.push(projectImage(region, image));
    }
  }
  return images;
}

/** Something that uses an AMI, as a report names it: "instance i-0abc (running)". */
export interface ImageUse {
  imageId: string;
  by: string;
}

/** Instance states whose instance still needs its image to start (again). */
const LIVE_INSTANCE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"];

/** The AMIs of the region's instances that are not terminated: running and stopped ones alike. */
export async function instanceImageUses(client: EC2Client): Promise<ImageUse[]> {
  const uses: ImageUse[] = [];
  const pages = paginateDescribeInstances(
    { client, pageSize: 1000 },
    { Filters: [{ Name: "instance-state-name", Values: LIVE_INSTANCE_STATES }] },
  );
  for await (const page of pages) {
    for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      if (instance.ImageId) uses.push({ imageId: instance.ImageId, by: `instance ${instance.InstanceId} (${instance.State?.Name ?? "unknown state"})` });
    }
  }
  return uses;
}

export interface LaunchTemplateUses {
  uses: ImageUse[];
  /**
   * Versions whose image is an SSM parameter (`resolve:ssm:...`) that names no AMI ID here: the
   * report lists them, since the image they launch cannot be told without reading the parameter.
   */
  unresolved: string[];
}

/** The AMIs of every version of every launch template in the region. */
export async function launchTemplateImageUses(client: EC2Client): Promise<LaunchTemplateUses> {
  const uses: ImageUse[] = [];
  const unresolved: string[] = [];
  for await (const page of paginateDescribeLaunchTemplates({ client, pageSize: 200 }, {})) {
    for (const template of page.LaunchTemplates ?? []) {
      if (!template.LaunchTemplateId) continue;
      const versions = paginateDescribeLaunchTemplateVersions({ client, pageSize: 200 }, { LaunchTemplateId: template.LaunchTemplateId });
      for await (const versionPage of versions) {
        for (const version of versionPage.LaunchTemplateVersions ?? []) {
          const imageId = version.LaunchTemplateData?.ImageId;
          if (!imageId) continue;
          const by = `launch template ${template.LaunchTemplateId} (${template.LaunchTemplateName ?? "unnamed"}) version ${version.VersionNumber}`;
          if (imageId.startsWith("ami-")) uses.push({ imageId, by });
          else unresolved.push(`${by} launches ${imageId}`);
        }
      }
    }
  }
  return { uses, unresolved };
}

export interface SnapshotRecord {
  snapshotId: string;
  description: string;
  /** The full size of the snapshot's data when EC2 reports it (FullSnapshotSizeInBytes), else undefined. */
  fullSizeBytes: number | undefined;
  volumeSizeGiB: number;
  tags: Tags;
}

/** The caller's snapshots that carry this project's lineage tags (every stage tags its snapshots like its AMIs). */
export async function listProjectSnapshots(client: EC2Client, owner: { stack?: string; stage?: string } = {}): Promise<SnapshotRecord[]> {
  return listSnapshots(client, { OwnerIds: ["self"], Filters: lineageFilters(owner) });
}

/** The named snapshots of the caller (missing ones are left out, not an error). */
export async function describeSnapshots(client: EC2Client, snapshotIds: readonly string[]): Promise<SnapshotRecord[]> {
  const found: SnapshotRecord[] = [];
  // DescribeSnapshots fails the whole call for one unknown ID; a filter on the IDs does not.
  for (let i = 0; i < snapshotIds.length; i += 200) {
    found.push(...(await listSnapshots(client, { OwnerIds: ["self"], Filters: [{ Name: "snapshot-id", Values: snapshotIds.slice(i, i + 200) }] })));
  }
  return found;
}

async function listSnapshots(client: EC2Client, input: { OwnerIds: string[]; Filters: Filter[] }): Promise<SnapshotRecord[]> {
  const found: SnapshotRecord[] = [];
  for await (const page of paginateDescribeSnapshots({ client, pageSize: 1000 }, input)) {
    for (const s of page.Snapshots ?? []) {
      if (!s.SnapshotId) continue;
      found.push({
        snapshotId: s.SnapshotId,
        description: s.Description ?? "",
        fullSizeBytes: s.FullSnapshotSizeInBytes,
        volumeSizeGiB: s.VolumeSize ?? 0,
        tags: tagMap(s.Tags),
      });
    }
  }
  return found;
}

/** Deregisters an image; an image already gone is fine. */
export async function deregisterImage(client: EC2Client, imageId: string): Promise<"deregistered" | "gone"> {
  try {
    await client.send(new DeregisterImageCommand({ ImageId: imageId }));
    return "deregistered";
  } catch (error) {
    if (isGone(error)) return "gone";
    throw error;
  }
}

/** Deletes a snapshot; one already gone is fine. */
export async function deleteSnapshot(client: EC2Client, snapshotId: string): Promise<"deleted" | "gone"> {
  try {
    await client.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
    return "deleted";
  } catch (error) {
    if (isGone(error)) return "gone";
    throw error;
  }
}

/** Sets the image's deprecation time (EC2 rounds it to the minute; it must be in the future). */
export async function deprecateImage(client: EC2Client, imageId: string, at: Date): Promise<void> {
  await client.send(new EnableImageDeprecationCommand({ ImageId: imageId, DeprecateAt: at }));
}

/** Which of these AMI IDs still exist in the region (any state but deregistered); a filter, so unknown IDs are no error. */
export async function existingImageIds(client: EC2Client, imageIds: readonly string[]): Promise<Set<string>> {
  const existing = new Set<string>();
  for (let i = 0; i < imageIds.length; i += 200) {
    const input = { Filters: [{ Name: "image-id", Values: imageIds.slice(i, i + 200) }], IncludeDeprecated: true, IncludeDisabled: true };
    for await (const page of paginateDescribeImages({ client }, input)) {
      for (const image of page.Images ?? []) if (image.ImageId && image.State !== "deregistered") existing.add(image.ImageId);
    }
  }
  return existing;
}
