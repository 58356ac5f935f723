/**
 * The EC2 layer of ./deregister.ts on the AWS SDK (and STS for the caller's account). Credentials come from the SDK's standard chain
 * (environment, profile, SSO, web identity, instance role) and nothing else.
 */
import {
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Tag,
} from "@aws-sdk/client-ec2";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import type { Ec2Layer, ImageRecord, SnapshotRecord } from "./deregister.ts";

/** What EC2 answers for an image or snapshot that does not exist (any more). */
const GONE = new Set(["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound"]);

function isGone(error: unknown): boolean {
  return error instanceof Error && GONE.has(error.name);
}

function tagMap(tags: readonly Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
}

export function sdkEc2Layer(): Ec2Layer {
  const clients = new Map<string, EC2Client>();
  const client = (region: string): EC2Client => {
    let c = clients.get(region);
    if (c === undefined) {
      c = new EC2Client({ region });
      clients.set(region, c);
    }
    return c;
  };

  let account: Promise<string> | undefined;

  return {
    callerAccount(region): Promise<string> {
      account ??= new STSClient({ region }).send(new GetCallerIdentityCommand({})).then(({ Account }) => {
        if (!Account) throw new Error("sts:GetCallerIdentity returned no account");
        return Account;
      });
      return account;
    },

    async describeImage(region, imageId): Promise<ImageRecord | undefined> {
      let images;
      try {
        // Disabled images are listed only on request; they are still ours to remove.
        ({ Images: images } = await client(region).send(new DescribeImagesCommand({ ImageIds: [imageId], IncludeDisabled: true })));
      } catch (error) {
        if (isGone(error)) return undefined;
        throw error;
      }
      // A just-deregistered image is still listed for a while, in state "deregistered".
      const image = images?.find((i) => i.ImageId === imageId && i.State !== "deregistered");
      if (image === undefined) return undefined;
      return {
        imageId,
        ownerId: image.OwnerId ?? "",
        snapshotIds: (image.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [])),
        tags: tagMap(image.Tags),
      };
    },

    async snapshotsOfImage(region, imageId): Promise<SnapshotRecord[]> {
      const found: SnapshotRecord[] = [];
      let NextToken: string | undefined;
      do {
        const page = await client(region).send(
          new DescribeSnapshotsCommand({
            OwnerIds: ["self"],
            Filters: [{ Name: "description", Values: [`*${imageId}*`] }],
            NextToken,
          }),
        );
        for (const s of page.Snapshots ?? []) {
          if (s.SnapshotId) found.push({ snapshotId: s.SnapshotId, tags: tagMap(s.Tags) });
        }
        NextToken = page.NextToken;
      } while (NextToken);
      return found;
    },

    async deregisterImage(region, imageId): Promise<void> {
      try {
        await client(region).send(new DeregisterImageCommand({ ImageId: imageId }));
      } catch (error) {
        if (!isGone(error)) throw error;
      }
    },

    async deleteSnapshot(region, snapshotId): Promise<void> {
      try {
        await client(region).send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
      } catch (error) {
        if (!isGone(error)) throw error;
      }
    },
  };
}
