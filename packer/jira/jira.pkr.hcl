# Stage "jira": the Jira base image. Uploads the Chef workspace and the Jira installer onto the OS
# base image and runs Chef (Cinc Client, local mode) with the jira-base role. Parent of every
# per-environment custom image. The amazon-ebs source and the lineage tags are shared by every
# stage (common-source.pkr.hcl).

locals {
  stage           = var.stage
  ami_name        = "jira-images-${local.stage}-${var.jira_version}-${formatdate("YYYYMMDDhhmmss", local.build_time)}"
  ami_description = "jira-images ${local.stage}: Jira Software ${var.jira_version} (inputs ${var.inputs_hash})"
  installer       = "atlassian-jira-software-${var.jira_version}.tar.gz"
  # The heap the image tests expect: the cookbook's defaults (attributes/default.rb), which the
  # jira-base role keeps.
  jvm = { minimum_memory = "1024m", maximum_memory = "2048m" }

  stage_lineage_tags = {
    "jira-images:jira-version"   = var.jira_version
    "jira-images:jira-installer" = "sha256:${var.jira_installer_sha256}"
  }
  stage_run_tags = {}
}

build {
  source "source.amazon-ebs.stage" {
    name = "jira"
  }

  provisioner "shell" {
    inline          = ["install -d -m 0700 -o ${var.ssh_username} ${local.workspace} ${local.workspace}/chef ${local.workspace}/files"]
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  # Transfer the workspace: cookbooks, roles, nodes and the client configuration.
  provisioner "file" {
    source      = "${path.root}/../chef/"
    destination = "${local.workspace}/chef"
  }

  # The installer is an LFS-tracked file that a fresh clone may lack; `generated` defers the
  # existence check to upload time so that `packer validate` works without it. The stage runner's
  # --require preflight stops a build whose installer is missing or still a git-lfs pointer.
  provisioner "file" {
    source      = "${path.root}/../files/${local.installer}"
    destination = "${local.workspace}/files/${local.installer}"
    generated   = true
  }

  # The upload must be the pinned installer before Chef's install recipe unpacks it.
  provisioner "shell" {
    script = "${path.root}/scripts/verify-installer.sh"
    environment_vars = [
      "INSTALLER=${local.workspace}/files/${local.installer}",
      "INSTALLER_SHA256=${var.jira_installer_sha256}",
    ]
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  # Run the provisioning, then take the workspace, the client and its caches off the image.
  provisioner "shell" {
    scripts = local.chef_scripts
    environment_vars = concat(local.chef_client_env, [
      "CHEF_RUN_LIST=role[jira-base]",
      "CHEF_NODE_NAME=${var.stage}",
      "JIRA_VERSION=${var.jira_version}",
      "JIRA_INSTALLER_DIR=${local.workspace}/files",
    ])
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
    inline = local.image_tests_inline
    environment_vars = concat(local.image_tests_env, [
      "JIRA_VERSION=${var.jira_version}",
      "JVM_MINIMUM_MEMORY=${local.jvm.minimum_memory}",
      "JVM_MAXIMUM_MEMORY=${local.jvm.maximum_memory}",
    ])
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  post-processor "manifest" {
    output     = var.manifest_path
    strip_path = true
    custom_data = {
      stage        = var.stage
      environment  = ""
      inputs_hash  = var.inputs_hash
      source_ami   = var.source_ami
      jira_version = var.jira_version
    }
  }
}
