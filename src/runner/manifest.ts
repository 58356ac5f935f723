import { readFile } from "node:fs/promises";
import { z } from "zod";
import { amiSetKey, parseAmiArtifactId, type StageImage } from "./image.ts";

/**
 * The manifest post-processor's file: `{"builds": [...], "last_run_uuid": "..."}`. It appends a
 * build per run, so only the builds of `last_run_uuid` belong to this run.
 */
export const ManifestSchema = z.object({
  builds: z.array(
    z.object({
      name: z.string(),
      builder_type: z.string(),
      build_time: z.number().optional(),
      artifact_id: z.string(),
      packer_run_uuid: z.string(),
      custom_data: z.record(z.string(), z.unknown()).nullable().optional(),
    }),
  ),
  last_run_uuid: z.string(),
});

export type Manifest = z.infer<typeof ManifestSchema>;

export type ManifestCheck =
  | { ok: true; runUuid: string }
  | { ok: false; runUuid: string; problem: string };

/**
 * Checks that the manifest's builds of its last run name exactly the image the stream reported.
 * Builds whose artifact is not an AMI (a `null` source next to an AMI build) are ignored, just as
 * in the stream.
 */
export function checkManifest(manifest: Manifest, image: StageImage): ManifestCheck {
  const runUuid = manifest.last_run_uuid;
  const builds = manifest.builds.filter((b) => b.packer_run_uuid === runUuid);
  const images = new Set<string>();
  for (const build of builds) {
    const pairs = parseAmiArtifactId(build.artifact_id);
    if (pairs) images.add(amiSetKey(Object.fromEntries(pairs.map((p) => [p.region, p.amiId]))));
  }
  const expected = amiSetKey(image.amis);
  if (images.size === 0) {
    return { ok: false, runUuid, problem: `the manifest's run ${runUuid} lists no AMI, the log says ${expected}` };
  }
  if (images.size > 1 || !images.has(expected)) {
    return {
      ok: false,
      runUuid,
      problem: `the manifest's run ${runUuid} lists ${[...images].join(" and ")}, the log says ${expected}`,
    };
  }
  return { ok: true, runUuid };
}

export async function readManifest(path: string): Promise<Manifest> {
  return ManifestSchema.parse(JSON.parse(await readFile(path, "utf8")));
}
