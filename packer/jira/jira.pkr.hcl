# Stage "jira": the Jira base image. Uploads the Chef workspace and the Jira installer onto the OS
# base image and runs Chef (Cinc Client, local mode) with the jira-base role. Parent of every
# per-environment custom image.

locals {
  build_time = timestamp()
  ami_name   = "jira-images-${var.stage}-${var.jira_version}-${formatdate("YYYYMMDDhhmmss", local.build_time)}"
  workspace  = "/var/tmp/jira-images"
  installer  = "atlassian-jira-software-${var.jira_version}.tar.gz"

  chef_client_rpm_url = var.chef_client_rpm_url != "" ? var.chef_client_rpm_url : "https://downloads.cinc.sh/files/stable/cinc/${var.chef_client_version}/el/9/cinc-${var.chef_client_version}-1.el9.x86_64.rpm"

  lineage_tags = {
    Name                          = local.ami_name
    "jira-images:stage"           = var.stage
    "jira-images:parent-ami"      = "{{ .SourceAMI }}"
    "jira-images:parent-ami-name" = "{{ .SourceAMIName }}"
    "jira-images:inputs-hash"     = var.inputs_hash
    "jira-images:jira-version"    = var.jira_version
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
}

source "amazon-ebs" "jira" {
  region        = var.region
  ami_regions   = var.ami_regions
  instance_type = var.build_instance_type
  subnet_id     = var.subnet_id
  ssh_username  = var.ssh_username
  source_ami    = var.source_ami

  # Only the builder's own address may reach the temporary instance.
  temporary_security_group_source_cidrs = var.ssh_source_cidrs

  ami_name        = local.ami_name
  ami_description = "jira-images ${var.stage}: Jira Software ${var.jira_version} (inputs ${var.inputs_hash})"
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
  sources = ["source.amazon-ebs.jira"]

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

  # Run the provisioning, then take the workspace, the client and its caches off the image.
  provisioner "shell" {
    scripts = [
      "${path.root}/../chef/scripts/install-chef-client.sh",
      "${path.root}/../chef/scripts/run-chef.sh",
      "${path.root}/../chef/scripts/cleanup.sh",
    ]
    environment_vars = [
      "WORKSPACE=${local.workspace}",
      "CHEF_CLIENT_VERSION=${var.chef_client_version}",
      "CHEF_CLIENT_RPM_URL=${local.chef_client_rpm_url}",
      "CHEF_CLIENT_RPM_SHA256=${var.chef_client_rpm_sha256}",
      "CHEF_RUN_LIST=role[jira-base]",
      "CHEF_NODE_NAME=${var.stage}",
      "JIRA_VERSION=${var.jira_version}",
      "JIRA_INSTALLER_DIR=${local.workspace}/files",
    ]
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
