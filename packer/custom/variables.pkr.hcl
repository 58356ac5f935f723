# Variables of this stage; those every stage declares alike are in common-variables.pkr.hcl, those
# it shares with the jira stage (source_ami, jira_version, the Chef client) in
# common-chef-stage.pkr.hcl.

# Contract variables (the Pulumi program passes them all with -var).

variable "stage" {
  type        = string
  default     = ""
  description = "Pipeline stage name (custom-<environment>); empty means custom-<environment>. Goes into the AMI name, the lineage tags and the manifest."
}

variable "build_instance_type" {
  type        = string
  default     = "t3.medium"
  description = "Instance type of the temporary build instance."
}

variable "environment" {
  type        = string
  description = "Target environment (dev, prod, ...); set by packer/custom/<env>.pkrvars.hcl."
}

variable "chef_node" {
  type        = string
  default     = ""
  description = "Chef node (packer/chef/nodes/<chef_node>.json) that specialises the image; empty means the environment's name."
}

# Build settings that are not part of the program contract.

variable "root_volume_size_gb" {
  type        = number
  default     = 20
  description = "Size of the image's root volume in GiB."
}

variable "extra_tags" {
  type        = map(string)
  default     = {}
  description = "Per-environment tags added to the AMI, its snapshots and the build instance (e.g. cost centre)."
}
