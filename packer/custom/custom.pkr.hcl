# Stage "custom-<env>": one template for every environment. Takes the Jira base image and runs Chef
# once more with the environment's node (packer/chef/nodes/<chef_node>.json, which applies the
# jira-<env> role). Per-environment values come from packer/custom/<env>.pkrvars.hcl.

locals {
  stage      = var.stage != "" ? var.stage : "custom-${var.environment}"
  chef_node  = var.chef_node != "" ? var.chef_node : var.environment
  build_time = timestamp()
  ami_name   = "jira-images-${local.stage}-${var.jira_version}-${formatdate("YYYYMMDDhhmmss", local.build_time)}"
  workspace  = "/var/tmp/jira-images"

  chef_client_rpm_url = var.chef_client_rpm_url != "" ? var.chef_client_rpm_url : "https://downloads.cinc.sh/files/stable/cinc/${var.chef_client_version}/el/9/cinc-${var.chef_client_version}-1.el9.x86_64.rpm"

  lineage_tags = merge(var.extra_tags, {
    Name                          = local.ami_name
    "jira-images:stage"           = local.stage
    "jira-images:environment"     = var.environment
    "jira-images:chef-node"       = local.chef_node
    "jira-images:parent-ami"      = "{{ .SourceAMI }}"
    "jira-images:parent-ami-name" = "{{ .SourceAMIName }}"
    "jira-images:inputs-hash"     = var.inputs_hash
    "jira-images:jira-version"    = var.jira_version
    "jira-images:build-time"      = local.build_time
    "jira-images:build-region"    = "{{ .BuildRegion }}"
    "jira-images:managed-by"      = "packer"
  })

  run_tags = merge(var.extra_tags, {
    Name                      = "packer-builder ${local.ami_name}"
    "jira-images:stage"       = local.stage
    "jira-images:environment" = var.environment
    "jira-images:inputs-hash" = var.inputs_hash
    "jira-images:managed-by"  = "packer"
  })
}

source "amazon-ebs" "custom" {
  region        = var.region
  ami_regions   = var.ami_regions
  instance_type = var.build_instance_type
  subnet_id     = var.subnet_id
  ssh_username  = var.ssh_username
  source_ami    = var.source_ami

  # Only the builder's own address may reach the temporary instance.
  temporary_security_group_source_cidrs = var.ssh_source_cidrs

  ami_name        = local.ami_name
  ami_description = "jira-images ${local.stage}: Jira Software ${var.jira_version} for ${var.environment} (inputs ${var.inputs_hash})"
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
  sources = ["source.amazon-ebs.custom"]

  provisioner "shell" {
    inline          = ["install -d -m 0700 -o ${var.ssh_username} ${local.workspace} ${local.workspace}/chef"]
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  # Transfer the workspace: cookbooks, roles, nodes and the client configuration.
  provisioner "file" {
    source      = "${path.root}/../chef/"
    destination = "${local.workspace}/chef"
  }

  # Run the provisioning with the environment's node, then take the workspace, the client and its
  # caches off the image.
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
      "CHEF_NODE=${local.chef_node}",
      "JIRA_VERSION=${var.jira_version}",
    ]
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  post-processor "manifest" {
    output     = var.manifest_path
    strip_path = true
    custom_data = {
      stage        = local.stage
      environment  = var.environment
      chef_node    = local.chef_node
      inputs_hash  = var.inputs_hash
      source_ami   = var.source_ami
      jira_version = var.jira_version
    }
  }
}
