# Stage "custom-<env>": one template for every environment. Takes the Jira base image and runs Chef
# once more with the environment's node (packer/chef/nodes/<chef_node>.json, which applies the
# jira-<env> role). Per-environment values come from packer/custom/<env>.pkrvars.hcl. The
# amazon-ebs source and the lineage tags are shared by every stage (common-source.pkr.hcl).

locals {
  stage     = var.stage != "" ? var.stage : "custom-${var.environment}"
  chef_node = var.chef_node != "" ? var.chef_node : var.environment
  # The heap the image check expects: the environment's role (its node applies role[jira-<env>]).
  jvm             = jsondecode(file("${abspath(path.root)}/../chef/roles/jira-${var.environment}.json")).default_attributes.jira.jvm
  ami_name        = "jira-images-${local.stage}-${var.jira_version}-${formatdate("YYYYMMDDhhmmss", local.build_time)}"
  ami_description = "jira-images ${local.stage}: Jira Software ${var.jira_version} for ${var.environment} (inputs ${var.inputs_hash})"

  stage_lineage_tags = merge(var.extra_tags, {
    "jira-images:environment"  = var.environment
    "jira-images:chef-node"    = local.chef_node
    "jira-images:jira-version" = var.jira_version
  })
  stage_run_tags = merge(var.extra_tags, {
    "jira-images:environment" = var.environment
  })
}

build {
  source "source.amazon-ebs.stage" {
    name = "custom"
  }

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
    scripts = local.chef_scripts
    environment_vars = concat(local.chef_client_env, [
      "CHEF_NODE=${local.chef_node}",
      "JIRA_VERSION=${var.jira_version}",
    ])
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  # The image check: fails the build (no AMI) unless the built file system is what Jira needs to
  # start with this stage's settings. After Chef's cleanup, so that leftovers count.
  provisioner "shell" {
    script = "${path.root}/scripts/verify-jira-image.sh"
    environment_vars = [
      "JIRA_VERSION=${var.jira_version}",
      "JVM_MINIMUM_MEMORY=${local.jvm.minimum_memory}",
      "JVM_MAXIMUM_MEMORY=${local.jvm.maximum_memory}",
    ]
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
  }

  # Last: what no instance launched from the image may share (authorized_keys, SSH host keys).
  provisioner "shell" {
    script          = "${path.root}/scripts/image-cleanup.sh"
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
