# Variables of this stage; those every stage declares alike are in common-variables.pkr.hcl.

# Contract variables (the Pulumi program passes them all with -var).

variable "stage" {
  type        = string
  default     = "base"
  description = "Pipeline stage name; goes into the AMI name, the lineage tags and the manifest."
}

variable "build_instance_type" {
  type        = string
  default     = "t3.small"
  description = "Instance type of the temporary build instance."
}

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

variable "root_volume_size_gb" {
  type        = number
  default     = 8
  description = "Size of the image's root volume in GiB."
}
