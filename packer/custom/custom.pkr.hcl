# Stage "custom-<env>": one template for every environment. Takes the Jira base image and runs Chef
# once more with the environment's node (packer/chef/nodes/<chef_node>.json, which applies the
# jira-<env> role). Per-environment values come from packer/custom/<env>.pkrvars.hcl. The
# amazon-ebs source and the lineage tags are shared by every stage (common-source.pkr.hcl).

locals {
  stage     = var.stage != "" ? var.stage : "custom-${var.environment}"
  chef_node = var.chef_node != "" ? var.chef_node : var.environment
  # What the image tests expect of the node: its role's heap and database settings (the node
  # applies role[jira-<env>]), with the node's own attributes over them, as Chef merges them.
  role = jsondecode(file("${abspath(path.root)}/../chef/roles/jira-${var.environment}.json")).default_attributes.jira
  node = jsondecode(file("${abspath(path.root)}/../chef/nodes/${local.chef_node}.json"))
  jvm  = local.role.jvm
  node_db = { for key in ["host", "name", "username", "password_store", "password_name"] :
    key => try(local.node.normal.jira.db[key], local.role.db[key])
  }
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
      "NODE_DB_HOST=${local.node_db.host}",
      "NODE_DB_NAME=${local.node_db.name}",
      "NODE_DB_USERNAME=${local.node_db.username}",
      "NODE_DB_PASSWORD_STORE=${local.node_db.password_store}",
      "NODE_DB_PASSWORD_NAME=${local.node_db.password_name}",
    ])
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
