import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

/**
 * The account-wide "block public access" settings for AMIs and EBS snapshots, in the build region
 * and every copy region: nobody in the account can make an image or its snapshots public.
 * Sharing with named accounts still works. These are settings of the whole account and region,
 * so one stack per account should own them (config blockPublicImageSharing).
 */
export class PublicSharingBlock extends pulumi.ComponentResource {
  constructor(name: string, args: { regions: readonly string[] }, opts?: pulumi.ComponentResourceOptions) {
    super("jira-images:account:PublicSharingBlock", name, {}, opts);
    const child = { parent: this };
    for (const region of args.regions) {
      // Removing this resource leaves the image setting as it is.
      new aws.ec2.ImageBlockPublicAccess(`${name}-images-${region}`, { region, state: "block-new-sharing" }, child);
      // Removing this resource turns the snapshot block off again.
      new aws.ebs.SnapshotBlockPublicAccess(`${name}-snapshots-${region}`, { region, state: "block-all-sharing" }, child);
    }
    this.registerOutputs({});
  }
}
