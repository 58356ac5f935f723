# Contract variables (every stage declares these; the Pulumi program passes them all with -var).

variable "stage" {
  type        = string
  default     = "base"
  description = "Pipeline stage name; goes into the AMI name, the lineage tags and the manifest."
}

variable "inputs_hash" {
  type        = string
  default     = "manual"
  description = "Hash of everything this image is built from, computed by the program; recorded as a lineage tag."
}

variable "region" {
  type        = string
  description = "AWS region to build in (the stack's region)."
}

variable "ami_regions" {
  type        = list(string)
  default     = []
  description = "Extra regions to copy the finished AMI to (encrypted with each region's default EBS key)."
}

variable "build_instance_type" {
  type        = string
  default     = "t3.small"
  description = "Instance type of the temporary build instance."
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

# Stage-specific contract variables.

variable "source_ami" {
  type        = string
  default     = ""
  description = "Pinned source AMI ID; when empty, the newest AMI matching source_ami_owners and source_ami_name_filter is used."
  validation {
    condition     = var.source_ami == "" || substr(var.source_ami, 0, 4) == "ami-"
    error_message = "The source_ami variable must be empty (use the filter) or an AMI ID such as ami-0123456789abcdef0."
  }
}

variable "source_ami_owners" {
  type        = list(string)
  default     = ["amazon"]
  description = "Pinned owners (account IDs or aliases) for the source AMI lookup; never leave this open."
  validation {
    condition     = length(var.source_ami_owners) > 0
    error_message = "The source_ami_owners variable must name at least one owner: an unowned name filter could match anyone's AMI."
  }
}

variable "source_ami_name_filter" {
  type        = string
  default     = "al2023-ami-2023.*-x86_64"
  description = "Name filter for the source AMI lookup (Amazon Linux 2023 by default)."
}

# Build settings that are not part of the program contract.

variable "ssh_source_cidrs" {
  type        = list(string)
  default     = []
  description = "CIDRs allowed to reach the build instance over SSH (the builder's own address, e.g. [\"203.0.113.7/32\"]); usually set with PKR_VAR_ssh_source_cidrs."
  validation {
    condition     = length(var.ssh_source_cidrs) > 0 && length([for c in var.ssh_source_cidrs : c if can(cidrhost(c, 0)) && contains(["0.0.0.0/0", "::/0"], c) == false]) == length(var.ssh_source_cidrs)
    error_message = "The ssh_source_cidrs variable must list the builder's own address as CIDRs, for example PKR_VAR_ssh_source_cidrs='[\"203.0.113.7/32\"]'; 0.0.0.0/0 is refused because the temporary security group must be open only to the builder."
  }
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the build instance; empty means the region's default VPC."
}

variable "root_volume_size_gb" {
  type        = number
  default     = 8
  description = "Size of the image's root volume in GiB."
}
