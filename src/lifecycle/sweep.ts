/**
 * `sweep`'s rules, pure (no AWS, no Pulumi): which of a stack's tagged build resources and AMIs a
 * dead build left behind, and which must stay. The EC2 side is in sweep-ec2.ts, the command in
 * src/driver/sweep-command.ts.
 */
import { runIdStart } from "../runner/run-marker.ts";
import { describePins, pinnedBy, STAGE_TAG, type Tags } from "./tags.ts";

export const RUN_ID_TAG = "jira-images:run-id";

/**
 * Added to the build timeout before a run counts as over: the runner interrupts Packer at the
 * timeout, and Packer's cleanup (terminate, delete group and key pair) takes minutes after it.
 */
export const CLEANUP_GRACE_SECONDS = 15 * 60;

export type ResourceKind = "instance" | "volume" | "security-group" | "key-pair" | "image";

/** A build resource as the rules see it. */
export interface SweepResource {
  kind: ResourceKind;
  region: string;
  id: string;
  tags: Tags;
  /** Instance: its state; image: available/pending/... */
  state?: string;
  /** Image: its EBS snapshots (deleted with it). */
  snapshots?: string[];
  /** Image: creation date (ISO 8601). */
  created?: string;
  /** Image: EC2 deprecation time, when set (a replaced image being retired: prune's business). */
  deprecationTime?: string;
  /** Security group / key pair without run tags, found through an instance of the run (`packer_<uuid>`). */
  viaInstance?: string;
  /** That instance's run id. */
  ownerRunId?: string;
}

export interface SweepContext {
  now: Date;
  /** `buildTimeoutSeconds` of the stack. */
  timeoutSeconds: number;
  /** Run ids with a live runner or Packer on this machine. */
  liveRunIds: ReadonlySet<string>;
  /** Every AMI ID anywhere in the stack's state (outputs, stage results, instances). */
  referencedAmis: ReadonlySet<string>;
  /**
   * Per stage, when the image the state records was created (ISO 8601). With
   * `keepsReplacedImages`, an unreferenced image older than that may be one the stack replaced
   * and keeps on purpose, so only newer ones are swept.
   */
  recordedImageCreated: ReadonlyMap<string, string>;
  /** The stack keeps replaced images (`deregisterReplacedImages: false`). */
  keepsReplacedImages: boolean;
}

export interface Decision {
  resource: SweepResource;
  remove: boolean;
  /** Why it goes, or why it stays. */
  reason: string;
}

type RunState = { dead: true; why: string } | { dead: false; why: string };

/** Whether the build with this run id is over: started longer ago than timeout + cleanup, and no live runner here. */
export function runState(runId: string | undefined, ctx: SweepContext): RunState {
  if (runId === undefined || runId === "") return { dead: false, why: `no ${RUN_ID_TAG} tag (built before run tags, or by hand)` };
  const started = runIdStart(runId);
  if (started === undefined) return { dead: false, why: `${RUN_ID_TAG} ${JSON.stringify(runId)} is not a runner's run id` };
  if (ctx.liveRunIds.has(runId)) return { dead: false, why: `run ${runId} is live (its runner or Packer still runs on this machine)` };
  const over = started.getTime() + (ctx.timeoutSeconds + CLEANUP_GRACE_SECONDS) * 1000;
  if (ctx.now.getTime() < over) {
    return { dead: false, why: `run ${runId} may still be running (started ${started.toISOString()}; over at ${new Date(over).toISOString()}: build timeout + ${CLEANUP_GRACE_SECONDS / 60} min cleanup)` };
  }
  return { dead: true, why: `run ${runId} started ${started.toISOString()}, longer ago than the build timeout, and has no live runner here` };
}

function decideImage(image: SweepResource, ctx: SweepContext): Decision {
  const keep = (reason: string): Decision => ({ resource: image, remove: false, reason });
  if (pinnedBy(image.tags).length > 0) return keep(describePins(image.tags));
  if (ctx.referencedAmis.has(image.id)) return keep("the stack's state references it");
  const run = runState(image.tags[RUN_ID_TAG], ctx);
  if (!run.dead) return keep(run.why);
  if (image.deprecationTime !== undefined) return keep(`deprecated (at ${image.deprecationTime}): a replaced image, for prune`);
  const stage = image.tags[STAGE_TAG] ?? "";
  if (ctx.keepsReplacedImages) {
    const recorded = ctx.recordedImageCreated.get(stage);
    if (recorded !== undefined && (image.created === undefined || image.created <= recorded)) {
      return keep(`older than stage ${stage}'s image in the state, so possibly a replaced image this stack keeps (deregisterReplacedImages: false): for prune`);
    }
  }
  return { resource: image, remove: true, reason: `no state references it; ${run.why}` };
}

/** The decision for every resource found; `remove` ones are what the sweep removes. */
export function decide(resources: readonly SweepResource[], ctx: SweepContext): Decision[] {
  return resources.map((r): Decision => {
    if (r.kind === "image") return decideImage(r, ctx);
    if (r.viaInstance !== undefined) {
      const run = runState(r.ownerRunId, ctx);
      return { resource: r, remove: run.dead, reason: `untagged, used by instance ${r.viaInstance} of the run; ${run.why}` };
    }
    const run = runState(r.tags[RUN_ID_TAG], ctx);
    return { resource: r, remove: run.dead, reason: run.why };
  });
}

/** The order `--apply` removes things in: what depends on a thing goes before it. */
export const REMOVAL_ORDER: readonly ResourceKind[] = ["instance", "volume", "security-group", "key-pair", "image"];

const VERB: Record<ResourceKind, string> = {
  instance: "terminate instance",
  volume: "delete volume",
  "security-group": "delete security group",
  "key-pair": "delete key pair",
  image: "deregister image",
};

export function describeAction(d: Decision): string {
  const r = d.resource;
  const stage = r.tags[STAGE_TAG] ? ` [${r.tags[STAGE_TAG]}]` : "";
  const snapshots = r.kind === "image" && r.snapshots?.length ? ` and its snapshots ${r.snapshots.join(", ")}` : "";
  return `${VERB[r.kind]} ${r.id}${snapshots} (${r.region})${stage}: ${d.reason}`;
}

/**
 * Every AMI ID anywhere in a state export (a Pulumi deployment: resource inputs and outputs, the
 * stage commands' stdout, the stack outputs). Broad on purpose: an ID that only looks referenced
 * keeps an image, which costs storage; a missed reference would remove an image in use.
 */
export function amisInState(deployment: unknown): Set<string> {
  return new Set(JSON.stringify(deployment ?? null).match(/ami-[0-9a-f]{8,17}\b/g) ?? []);
}
