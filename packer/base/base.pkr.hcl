# Stage "base": the OS base image (Amazon Linux 2023 by default) with OS updates, the SSM agent and
# host hardening. Parent of the Jira base image.

locals {
  build_time = timestamp()
  ami_name   = "jira-images-${var.stage}-${formatdate("YYYYMMDDhhmmss", local.build_time)}"

  # {{ .SourceAMI }} / {{ .SourceAMIName }} are filled in by the amazon builder at build time, so
  # the tag records the AMI actually used, also when it came from the filter.
  lineage_tags = {
    Name                          = local.ami_name
    "jira-images:stage"           = var.stage
    "jira-images:parent-ami"      = "{{ .SourceAMI }}"
    "jira-images:parent-ami-name" = "{{ .SourceAMIName }}"
    "jira-images:inputs-hash"     = var.inputs_hash
    "jira-images:build-time"      = local.build_time
    "jira-images:build-region"    = "{{ .BuildRegion }}"
    "jira-images:managed-by"      = "packer"
  }

  run_tags = {
    Name                      = "packer-builder ${local.ami_name}"
    "jira-images:stage"       = var.stage
    "jira-images:inputs-hash" = var.inputs_hash
    "jira-images:managed-by"  = "packer"
  }

  source_ami_filters = var.source_ami == "" ? [{
    name                = var.source_ami_name_filter
    virtualization-type = "hvm"
    root-device-type    = "ebs"
    architecture        = "x86_64"
  }] : []
}

source "amazon-ebs" "base" {
  region        = var.region
  ami_regions   = var.ami_regions
  instance_type = var.build_instance_type
  subnet_id     = var.subnet_id
  ssh_username  = var.ssh_username

  source_ami = var.source_ami
  dynamic "source_ami_filter" {
    for_each = local.source_ami_filters
    content {
      filters     = source_ami_filter.value
      owners      = var.source_ami_owners
      most_recent = true
    }
  }

  # Only the builder's own address may reach the temporary instance.
  temporary_security_group_source_cidrs = var.ssh_source_cidrs

  ami_name        = local.ami_name
  ami_description = "jira-images ${var.stage} (inputs ${var.inputs_hash})"
  encrypt_boot    = true

  launch_block_device_mappings {
    device_name           = "/dev/xvda"
    volume_size           = var.root_volume_size_gb
    volume_type           = "gp3"
    iops                  = 3000
    throughput            = 125
    delete_on_termination = true
  }

  tags            = local.lineage_tags
  snapshot_tags   = local.lineage_tags
  run_tags        = local.run_tags
  run_volume_tags = local.run_tags
}

build {
  sources = ["source.amazon-ebs.base"]

  provisioner "shell" {
    script          = "${path.root}/scripts/os-base.sh"
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  post-processor "manifest" {
    output     = var.manifest_path
    strip_path = true
    custom_data = {
      stage       = var.stage
      environment = ""
      inputs_hash = var.inputs_hash
    }
  }
}
