/**
 * `sweep` against EC2: finds a stack's tagged build resources in a region (paginated), and removes
 * the chosen ones in dependency order, going on past a failure so that one refusal does not keep
 * the rest; a rerun finishes what failed.
 */
import {
  DeleteKeyPairCommand,
  DeleteSecurityGroupCommand,
  DeleteVolumeCommand,
  DescribeKeyPairsCommand,
  TerminateInstancesCommand,
  paginateDescribeInstances,
  paginateDescribeSecurityGroups,
  paginateDescribeVolumes,
  waitUntilInstanceTerminated,
  type EC2Client,
  type Filter,
} from "@aws-sdk/client-ec2";
import { deleteSnapshot, deregisterImage, errorText, listProjectImages } from "./ec2.ts";
import { MANAGED_BY, MANAGED_BY_TAG, STACK_TAG, tagMap } from "./tags.ts";
import { REMOVAL_ORDER, RUN_ID_TAG, type Decision, type SweepResource } from "./sweep.ts";

/** Every EC2 action sweep calls (the README's IAM list; docs/iam/deploy-*-policy.json grant them). */
export const SWEEP_ACTIONS = [
  "ec2:DeleteKeyPair",
  "ec2:DeleteSecurityGroup",
  "ec2:DeleteSnapshot",
  "ec2:DeleteVolume",
  "ec2:DeregisterImage",
  "ec2:DescribeImages",
  "ec2:DescribeInstances",
  "ec2:DescribeKeyPairs",
  "ec2:DescribeSecurityGroups",
  "ec2:DescribeVolumes",
  "ec2:TerminateInstances",
] as const;

/** Packer's name for its temporary security group and key pair (`packer_<uuid>`). */
const PACKER_TEMPORARY = /^packer_[0-9a-f-]+$/;

function runFilters(stack: string): Filter[] {
  return [
    { Name: `tag:${MANAGED_BY_TAG}`, Values: [MANAGED_BY] },
    { Name: `tag:${STACK_TAG}`, Values: [stack] },
    { Name: "tag-key", Values: [RUN_ID_TAG] },
  ];
}

/** The stack's build resources and images in one region. */
export async function findSweepResources(client: EC2Client, region: string, stack: string): Promise<SweepResource[]> {
  const found: SweepResource[] = [];
  const groupIds = new Set<string>();
  const keyNames = new Set<string>();
  const linked: SweepResource[] = [];
  // Terminated instances are listed too (EC2 keeps them about an hour): their untagged group or key may remain.
  for await (const page of paginateDescribeInstances({ client, pageSize: 1000 }, { Filters: runFilters(stack) })) {
    for (const instance of (page.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      if (!instance.InstanceId) continue;
      const state = instance.State?.Name ?? "unknown";
      const tags = tagMap(instance.Tags);
      if (state !== "terminated") found.push({ kind: "instance", region, id: instance.InstanceId, tags, state });
      const via = { viaInstance: instance.InstanceId, ownerRunId: tags[RUN_ID_TAG] ?? "" };
      for (const group of instance.SecurityGroups ?? []) {
        if (group.GroupId && PACKER_TEMPORARY.test(group.GroupName ?? "")) {
          linked.push({ kind: "security-group", region, id: group.GroupId, tags: {}, ...via });
        }
      }
      if (instance.KeyName && PACKER_TEMPORARY.test(instance.KeyName)) {
        linked.push({ kind: "key-pair", region, id: instance.KeyName, tags: {}, ...via });
      }
    }
  }
  for await (const page of paginateDescribeVolumes({ client, pageSize: 500 }, { Filters: runFilters(stack) })) {
    for (const volume of page.Volumes ?? []) {
      if (volume.VolumeId) found.push({ kind: "volume", region, id: volume.VolumeId, tags: tagMap(volume.Tags), state: volume.State ?? "unknown" });
    }
  }
  for await (const page of paginateDescribeSecurityGroups({ client, pageSize: 1000 }, { Filters: runFilters(stack) })) {
    for (const group of page.SecurityGroups ?? []) {
      if (group.GroupId) {
        groupIds.add(group.GroupId);
        found.push({ kind: "security-group", region, id: group.GroupId, tags: tagMap(group.Tags) });
      }
    }
  }
  // DescribeKeyPairs is not paginated: one answer holds every key pair.
  const { KeyPairs } = await client.send(new DescribeKeyPairsCommand({ Filters: runFilters(stack) }));
  for (const key of KeyPairs ?? []) {
    if (key.KeyName) {
      keyNames.add(key.KeyName);
      found.push({ kind: "key-pair", region, id: key.KeyName, tags: tagMap(key.Tags) });
    }
  }
  // Untagged ones (the AWS China regions tag neither) count once, through their instance, while they exist
  // (a terminated instance still names the group and key pair it had).
  const untagged = linked.filter((r) => !(r.kind === "security-group" ? groupIds : keyNames).has(r.id));
  const existing = await existingUntagged(client, untagged);
  for (const r of untagged) {
    const known = r.kind === "security-group" ? groupIds : keyNames;
    if (!known.has(r.id) && existing.has(r.id)) {
      known.add(r.id);
      found.push(r);
    }
  }
  for (const image of await listProjectImages(client, region, { stack })) {
    found.push({
      kind: "image",
      region,
      id: image.imageId,
      tags: image.tags,
      state: image.state,
      snapshots: image.snapshots.map((s) => s.snapshotId),
      created: image.creationDate,
      ...(image.deprecationTime !== undefined ? { deprecationTime: image.deprecationTime } : {}),
    });
  }
  return found;
}

async function existingUntagged(client: EC2Client, linked: readonly SweepResource[]): Promise<Set<string>> {
  const existing = new Set<string>();
  const groups = [...new Set(linked.filter((r) => r.kind === "security-group").map((r) => r.id))];
  const keys = [...new Set(linked.filter((r) => r.kind === "key-pair").map((r) => r.id))];
  // Filters, not IDs: one ID that is gone would fail the whole call.
  for (let i = 0; i < groups.length; i += 200) {
    const input = { Filters: [{ Name: "group-id", Values: groups.slice(i, i + 200) }] };
    for await (const page of paginateDescribeSecurityGroups({ client, pageSize: 1000 }, input)) {
      for (const group of page.SecurityGroups ?? []) if (group.GroupId) existing.add(group.GroupId);
    }
  }
  for (let i = 0; i < keys.length; i += 200) {
    const { KeyPairs } = await client.send(new DescribeKeyPairsCommand({ Filters: [{ Name: "key-name", Values: keys.slice(i, i + 200) }] }));
    for (const key of KeyPairs ?? []) if (key.KeyName) existing.add(key.KeyName);
  }
  return existing;
}

export interface RemovalOutcome {
  decision: Decision;
  /** Undefined when done; AWS's error otherwise. */
  error?: string;
}

/** What EC2 answers for a thing that is gone already: done, not a failure. */
const GONE = /NotFound|InvalidGroup\.NotFound|InvalidKeyPair\.NotFound|InvalidVolume\.NotFound|InvalidInstanceID\.NotFound/;

export interface RemoveOptions {
  /** How long to wait for terminated instances before deleting their volumes and groups. */
  terminateWaitSeconds: number;
}

/** Removes the chosen resources of one region in dependency order; never throws. */
export async function removeSweepResources(client: EC2Client, chosen: readonly Decision[], options: RemoveOptions): Promise<RemovalOutcome[]> {
  const outcomes: RemovalOutcome[] = [];
  const byKind = (kind: string) => chosen.filter((d) => d.resource.kind === kind);
  const attempt = async (decision: Decision, action: () => Promise<unknown>) => {
    try {
      await action();
      outcomes.push({ decision });
    } catch (error) {
      outcomes.push(GONE.test(error instanceof Error ? error.name : "") ? { decision } : { decision, error: errorText(error) });
    }
  };
  for (const kind of REMOVAL_ORDER) {
    const items = byKind(kind);
    if (items.length === 0) continue;
    if (kind === "instance") {
      const first = outcomes.length;
      for (const d of items) await attempt(d, () => client.send(new TerminateInstancesCommand({ InstanceIds: [d.resource.id] })));
      const asked = outcomes.slice(first).filter((o) => o.error === undefined);
      // Volumes, groups and key pairs stay in use until the instance is gone.
      if (asked.length > 0) {
        try {
          const InstanceIds = asked.map((o) => o.decision.resource.id);
          await waitUntilInstanceTerminated({ client, maxWaitTime: options.terminateWaitSeconds, minDelay: 1, maxDelay: 15 }, { InstanceIds });
        } catch (error) {
          for (const o of asked) o.error = `did not terminate within ${options.terminateWaitSeconds} s (${errorText(error).slice(0, 200)})`;
        }
      }
      continue;
    }
    for (const d of items) {
      const id = d.resource.id;
      if (kind === "volume") await attempt(d, () => client.send(new DeleteVolumeCommand({ VolumeId: id })));
      else if (kind === "security-group") await attempt(d, () => client.send(new DeleteSecurityGroupCommand({ GroupId: id })));
      else if (kind === "key-pair") await attempt(d, () => client.send(new DeleteKeyPairCommand({ KeyName: id })));
      else {
        await attempt(d, async () => {
          await deregisterImage(client, id);
          // After the image: a snapshot of a registered image cannot be deleted.
          for (const snapshot of d.resource.snapshots ?? []) await deleteSnapshot(client, snapshot);
        });
      }
    }
  }
  return outcomes;
}
