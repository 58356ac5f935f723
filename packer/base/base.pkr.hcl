# Stage "base": the OS base image (Amazon Linux 2023 by default) with OS updates, the SSM agent and
# host hardening. Parent of the Jira base image. The amazon-ebs source and the lineage tags are
# shared by every stage (common-source.pkr.hcl).

locals {
  stage           = var.stage
  ami_name        = "jira-images-${local.stage}-${formatdate("YYYYMMDDhhmmss", local.build_time)}"
  ami_description = "jira-images ${local.stage} (inputs ${var.inputs_hash})"

  stage_lineage_tags = {}
  stage_run_tags     = {}

  source_ami_filters = var.source_ami == "" ? [{
    name                = var.source_ami_name_filter
    virtualization-type = "hvm"
    root-device-type    = "ebs"
    architecture        = "x86_64"
  }] : []
}

build {
  source "source.amazon-ebs.stage" {
    name = "base"

    # The only stage without a parent: an empty source_ami means the newest image of the filter.
    dynamic "source_ami_filter" {
      for_each = local.source_ami_filters
      content {
        filters     = source_ami_filter.value
        owners      = var.source_ami_owners
        most_recent = true
      }
    }
  }

  provisioner "shell" {
    script          = "${path.root}/scripts/os-base.sh"
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  # What no instance launched from the image may share (authorized_keys, SSH host keys).
  provisioner "shell" {
    script          = "${path.root}/scripts/image-cleanup.sh"
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  # Last: the image tests (packer/common/image-tests) on what the AMI will hold, after
  # image-cleanup.sh so that its work is tested too; a failed check fails the build, so no AMI is made.
  provisioner "file" {
    source      = local.image_tests_source
    destination = "/tmp/"
  }

  provisioner "shell" {
    inline           = local.image_tests_inline
    environment_vars = local.image_tests_env
    execute_command  = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
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
