# Variables every stage declares alike, loaded by each stage folder through its
# common-variables.pkr.hcl symlink (Packer does not load sub-folders). What differs between stages
# (stage's default, source_ami's rules, build_instance_type and root_volume_size_gb defaults) stays
# in the stage's own variables.pkr.hcl.

# Contract variables (the Pulumi program passes them all with -var).

variable "inputs_hash" {
  type        = string
  default     = "manual"
  description = "Hash of everything this image is built from, computed by the program; recorded as a lineage tag."
}

variable "stack" {
  type        = string
  default     = "manual"
  description = "Pulumi stack that builds the image (dev, prod); recorded as the jira-images:stack tag, which the stage's delete step checks before deregistering."
}

variable "run_id" {
  type        = string
  default     = "manual"
  description = "The stage runner's id of this build (set by the runner, never by a stage); tagged as jira-images:run-id on the build instance, its volumes, security group and key pair and on the AMI, so that sweep can tell a dead build's leftovers from a live build."
}

variable "region" {
  type        = string
  description = "AWS region to build in (the stack's region)."
}

variable "ami_regions" {
  type        = list(string)
  default     = []
  description = "Extra regions to copy the finished AMI to (encrypted with region_kms_key_ids, else each region's aws/ebs key)."
}

variable "kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key (ID, alias/<name> or ARN) encrypting the launch volume and the AMI in region; empty means the region's aws/ebs key, whose images cannot be shared with other accounts."
}

variable "region_kms_key_ids" {
  type        = map(string)
  default     = {}
  description = "KMS key per ami_regions copy ({\"eu-central-1\" = \"alias/jira-images\"}); a copy region left out is encrypted with its aws/ebs key."
}

variable "ssh_username" {
  type        = string
  default     = "ec2-user"
  description = "Login user of the source OS (ec2-user on Amazon Linux)."
}

variable "manifest_path" {
  type        = string
  default     = "packer-manifest.json"
  description = "Where the manifest post-processor writes the build's artifact; the stage runner passes a fresh path per run."
}

# Build settings that are not part of the program contract.

variable "ssh_source_cidrs" {
  type        = list(string)
  default     = []
  description = "CIDRs allowed to reach the build instance over SSH (the builder's own address, e.g. [\"203.0.113.7/32\"]); usually set with PKR_VAR_ssh_source_cidrs."
  # The rule of src/build-access.ts: at least one entry, each a CIDR no wider than an IPv4 /24 or an
  # IPv6 /64 (so two halves of the internet are refused too). Packer 1.6.6 has no regex or
  # tonumber: the prefix is compared as text with the allowed ones.
  validation {
    condition = length(var.ssh_source_cidrs) > 0 && length([
      for c in var.ssh_source_cidrs : c
      if can(cidrhost(c, 0)) && contains([for n in range(length(split(":", c)) > 1 ? 64 : 24, length(split(":", c)) > 1 ? 129 : 33) : format("%d", n)], element(split("/", c), 1))
    ]) == length(var.ssh_source_cidrs)
    error_message = "The ssh_source_cidrs variable must list the builder's own address as CIDRs, for example PKR_VAR_ssh_source_cidrs='[\"203.0.113.7/32\"]'; each entry may be at most an IPv4 /24 or an IPv6 /64, because the temporary security group must be open only to the builder."
  }
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the build instance; empty means the region's default VPC."
}
