# The amazon-ebs source and the lineage tags every stage builds with, loaded by each stage folder
# through its common-source.pkr.hcl symlink, so that encryption, privacy, the restricted temporary
# security group and the tags cannot drift apart between stages.
#
# Each stage folder defines the locals read here (stage, ami_name, ami_description,
# stage_lineage_tags, stage_run_tags) and the variables build_instance_type, root_volume_size_gb
# and source_ami, and names the source after itself in its build block
# (`source "source.amazon-ebs.stage" { name = "<stage>" }`), which keeps the build's target
# `amazon-ebs.<stage>` in Packer's output. A build-level source block may add fields but not
# override these.

locals {
  build_time = timestamp()

  # {{ .SourceAMI }} / {{ .SourceAMIName }} are filled in by the amazon builder at build time, so
  # the tag records the AMI actually used, also when it came from a filter. The stage's own tags
  # come first so that they can never replace these.
  lineage_tags = merge(local.stage_lineage_tags, {
    Name                          = local.ami_name
    "jira-images:stage"           = local.stage
    "jira-images:stack"           = var.stack
    "jira-images:parent-ami"      = "{{ .SourceAMI }}"
    "jira-images:parent-ami-name" = "{{ .SourceAMIName }}"
    "jira-images:inputs-hash"     = var.inputs_hash
    "jira-images:build-time"      = local.build_time
    "jira-images:build-region"    = "{{ .BuildRegion }}"
    "jira-images:run-id"          = var.run_id
    "jira-images:managed-by"      = "packer"
    # The image tests ran last on the build instance: an AMI exists only when every check passed.
    "jira-images:tests"       = "passed"
    "jira-images:tests-count" = format("%d", var.image_tests_count)
  })

  # The amazon plugin (1.8) puts run_tags on the build instance, the temporary security group and
  # key pair and the intermediate image; run_volume_tags on the launch volumes. The run id ties
  # them to one runner, which is how sweep tells a dead build's leftovers from a live build.
  run_tags = merge(local.stage_run_tags, {
    Name                      = "packer-builder ${local.ami_name}"
    "jira-images:stage"       = local.stage
    "jira-images:stack"       = var.stack
    "jira-images:inputs-hash" = var.inputs_hash
    "jira-images:run-id"      = var.run_id
    "jira-images:managed-by"  = "packer"
  })
}

source "amazon-ebs" "stage" {
  region        = var.region
  ami_regions   = var.ami_regions
  instance_type = var.build_instance_type
  subnet_id     = var.subnet_id
  ssh_username  = var.ssh_username
  source_ami    = var.source_ami

  # Only the builder's own address may reach the temporary instance.
  temporary_security_group_source_cidrs = var.ssh_source_cidrs

  # The build instance answers metadata requests only with an IMDSv2 session token, one hop away
  # (the plugin would otherwise send http_tokens = "optional" and override the OS image's default).
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  ami_name        = local.ami_name
  ami_description = local.ami_description
  # Every launch from the image, by anyone, gets IMDSv2 only (set on every region's copy).
  imds_support = "v2.0"

  # Encrypted from the first write: the launch volume and so Packer's intermediate image are never
  # plain, and the final AMI and its copies are encrypted with the stack's key (empty: aws/ebs).
  encrypt_boot       = true
  kms_key_id         = var.kms_key_id
  region_kms_key_ids = var.region_kms_key_ids

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_size_gb
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    encrypted             = true
    kms_key_id            = var.kms_key_id
    delete_on_termination = true
  }

  tags            = local.lineage_tags
  snapshot_tags   = local.lineage_tags
  run_tags        = local.run_tags
  run_volume_tags = local.run_tags
}
