import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";
import { z } from "zod";

/**
 * What this app relies on from the images stack. Parsed rather than trusted: a stack reference
 * is another team's output, and a wrong shape should fail the preview with a clear message.
 */
const AmiId = z.string().regex(/^ami-[0-9a-f]{8,17}$/);
export const AmiIdsSchema = z.record(z.string(), AmiId);
export const ImageSchema = z.object({
  stage: z.string(),
  amiId: AmiId,
  amis: z.record(z.string(), AmiId),
  parentStage: z.string().nullable(),
  parentAmi: z.string(),
  inputsHash: z.string(),
});
export const ImagesSchema = z.record(z.string(), ImageSchema);
export type Image = z.infer<typeof ImageSchema>;

export interface SelectedImage {
  stage: string;
  amiId: string;
  /** stage names from the OS base down to this image, e.g. base > jira > custom-dev. */
  lineage: string[];
  image: Image;
}

/**
 * Picks the environment's image in this app's region. Pure, so the rules are tested directly:
 * the stage must exist and have a copy in the region (images are regional).
 */
export function selectImage(amiIdsValue: unknown, imagesValue: unknown, environment: string, region: string): SelectedImage {
  const stage = `custom-${environment}`;
  const amiIds = AmiIdsSchema.parse(amiIdsValue);
  const images = ImagesSchema.parse(imagesValue);
  const image = images[stage];
  if (amiIds[stage] === undefined || image === undefined) {
    throw new Error(`jira-app: the images stack has no stage ${stage} (it exports ${Object.keys(amiIds).join(", ") || "nothing"}); is it the ${environment} stack?`);
  }
  const amiId = image.amis[region];
  if (amiId === undefined) {
    throw new Error(
      `jira-app: image ${stage} has no copy in ${region} (regions: ${Object.keys(image.amis).join(", ")}); ` +
        `add ${region} to the images stack's amiRegions`,
    );
  }
  const lineage: string[] = [];
  for (let current: Image | undefined = image; current; current = current.parentStage ? images[current.parentStage] : undefined) {
    lineage.unshift(current.stage);
    if (lineage.length > Object.keys(images).length) throw new Error(`jira-app: the lineage of ${stage} has a cycle`);
  }
  return { stage, amiId, lineage, image };
}

export interface JiraAppConfig {
  /** `organization/jira-images/<stack>` with a file backend; `<org>/jira-images/<stack>` on Pulumi Cloud. */
  imagesStack: string;
  environment: string;
  region: string;
  instanceType: string;
  subnetId?: string;
}

export function readJiraAppConfig(): JiraAppConfig {
  const config = new pulumi.Config();
  const region = new pulumi.Config("aws").require("region");
  const subnetId = config.get("subnetId");
  return {
    imagesStack: config.get("imagesStack") || `organization/jira-images/${pulumi.getStack()}`,
    environment: config.require("environment"),
    region,
    instanceType: config.get("instanceType") || "t3.large",
    ...(subnetId ? { subnetId } : {}),
  };
}

/** The environment's image, read from the images stack's outputs through a stack reference. */
export function imageFromStack(config: JiraAppConfig): pulumi.Output<SelectedImage> {
  const images = new pulumi.StackReference(config.imagesStack);
  return pulumi
    .all([images.requireOutput("amiIds"), images.requireOutput("images")])
    .apply(([amiIds, imageMap]) => selectImage(amiIds, imageMap, config.environment, config.region));
}

/** The app: a launch template on the environment's image (IMDSv2, encrypted disk) and one instance. */
export function defineJiraApp(config: JiraAppConfig) {
  const selected = imageFromStack(config);

  // The image's lineage on every instance: which build of which parent it runs.
  const tags = selected.apply((s) => ({
    Name: `jira-${config.environment}`,
    "jira-images:stage": s.stage,
    "jira-images:lineage": s.lineage.join(">"),
    "jira-images:parent-ami": s.image.parentAmi,
    "jira-images:inputs-hash": s.image.inputsHash,
  }));

  const template = new aws.ec2.LaunchTemplate(`jira-${config.environment}`, {
    imageId: selected.amiId,
    instanceType: config.instanceType,
    metadataOptions: { httpEndpoint: "enabled", httpTokens: "required" },
    blockDeviceMappings: [{ deviceName: "/dev/xvda", ebs: { encrypted: "true", volumeType: "gp3" } }],
    tagSpecifications: [{ resourceType: "instance", tags }],
    tags,
  });

  const instance = new aws.ec2.Instance(`jira-${config.environment}`, {
    launchTemplate: { id: template.id, version: pulumi.interpolate`${template.latestVersion}` },
    ...(config.subnetId ? { subnetId: config.subnetId } : {}),
    tags,
  });

  return {
    imagesStack: config.imagesStack,
    amiId: selected.amiId,
    lineage: selected.lineage,
    launchTemplateId: template.id,
    instanceId: instance.id,
  };
}
