# Variables of this stage; those every stage declares alike are in common-variables.pkr.hcl, those
# it shares with the custom stage (source_ami, jira_version, the Chef client) in
# common-chef-stage.pkr.hcl.

# Contract variables (the Pulumi program passes them all with -var).

variable "stage" {
  type        = string
  default     = "jira"
  description = "Pipeline stage name; goes into the AMI name, the lineage tags and the manifest."
}

variable "build_instance_type" {
  type        = string
  default     = "t3.medium"
  description = "Instance type of the temporary build instance."
}

# Build settings that are not part of the program contract.

variable "root_volume_size_gb" {
  type        = number
  default     = 20
  description = "Size of the image's root volume in GiB."
}
