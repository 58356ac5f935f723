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

variable "jira_installer_sha256" {
  type        = string
  description = "Pinned SHA-256 of the Jira installer, from its line in packer/files/SHA256SUMS; the upload is checked against it before anything unpacks it."
  validation {
    # 64 lower-case hex digits (trim, not regex: Packer 1.6.6, which the tests use, has no regex).
    condition     = length(var.jira_installer_sha256) == 64 && trim(var.jira_installer_sha256, "0123456789abcdef") == ""
    error_message = "The jira_installer_sha256 variable must be the installer's pinned SHA-256 (64 lower-case hex digits): add the line \"<sha256>  atlassian-jira-software-<version>.tar.gz\" with the checksum Atlassian publishes to packer/files/SHA256SUMS."
  }
}

# Build settings that are not part of the program contract.

variable "root_volume_size_gb" {
  type        = number
  default     = 20
  description = "Size of the image's root volume in GiB."
}
