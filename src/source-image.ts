import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { JiraImagesError } from "./errors.ts";
import { AmiIdSchema } from "./runner/result.ts";
import type { StackConfig } from "./config.ts";

/**
 * The lookup of the base stage's OS image: the same owners and filters as packer/base's
 * source_ami_filter (name, HVM, EBS root, x86_64), newest first. Pure.
 */
export function sourceImageQuery(config: StackConfig): aws.ec2.GetAmiArgs {
  return {
    owners: [...config.sourceAmiOwners],
    mostRecent: true,
    filters: [
      { name: "name", values: [config.sourceAmiNameFilter] },
      { name: "virtualization-type", values: ["hvm"] },
      { name: "root-device-type", values: ["ebs"] },
      { name: "architecture", values: ["x86_64"] },
    ],
  };
}

/** What a failed lookup says: which query, why, and the ways out. Pure. */
export function sourceImageLookupError(config: StackConfig, cause: unknown): JiraImagesError {
  const reason = (cause instanceof Error ? cause.message : String(cause)).split("\n")[0]!.trim() || "the lookup failed";
  return new JiraImagesError(
    "SOURCE_IMAGE_LOOKUP_FAILED",
    `stack ${config.stack}: resolveSourceAmi: no OS image could be resolved for owners ${JSON.stringify(config.sourceAmiOwners)} ` +
      `and name filter ${JSON.stringify(config.sourceAmiNameFilter)} in ${config.region} (${reason}). Nothing was rebuilt. ` +
      `Fix: correct sourceAmiNameFilter or sourceAmiOwners, grant ec2:DescribeImages to the role running the preview or up, ` +
      "or pin the image with sourceAmi (and resolveSourceAmi: false)",
    { cause },
  );
}

/**
 * With `resolveSourceAmi`, the newest matching OS image in the stack's region (through the stack's
 * provider), resolved at every preview and up; otherwise undefined (Packer resolves the filter at
 * build time, or sourceAmi pins it). A failed lookup fails the run: no other value may stand in,
 * because any other value in base's trigger would rebuild the whole chain.
 */
export function resolveSourceImage(config: StackConfig, provider: aws.Provider): pulumi.Output<string> | undefined {
  if (!config.resolveSourceAmi) return undefined;
  const resolved = aws.ec2
    .getAmi(sourceImageQuery(config), { provider })
    .then((image) => AmiIdSchema.parse(image.imageId || image.id))
    .catch((error: unknown) => {
      throw sourceImageLookupError(config, error);
    });
  return pulumi.output(resolved);
}
