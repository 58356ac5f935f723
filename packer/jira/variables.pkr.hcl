# Contract variables (every stage declares these; the Pulumi program passes them all with -var).

variable "stage" {
  type        = string
  default     = "jira"
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
  default     = "t3.medium"
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
  description = "Parent AMI ID, fed by the parent stage's output."
  validation {
    condition     = substr(var.source_ami, 0, 4) == "ami-"
    error_message = "The source_ami variable must be the parent stage's AMI ID, such as ami-0123456789abcdef0."
  }
}

variable "jira_version" {
  type        = string
  default     = "9.12.15"
  description = "Jira Software version; the installer is packer/files/atlassian-jira-software-<version>.tar.gz."
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
  default     = 20
  description = "Size of the image's root volume in GiB."
}

variable "chef_client_version" {
  type        = string
  default     = "18.7.10"
  description = "Pinned Cinc Client (free Chef Infra Client build) version installed for the Chef run and removed afterwards."
}

variable "chef_client_rpm_url" {
  type        = string
  default     = ""
  description = "URL of the Cinc Client RPM; empty means the EL 9 package of chef_client_version from downloads.cinc.sh."
}

variable "chef_client_rpm_sha256" {
  type        = string
  default     = "78bc31f3a30605594b0f0eaf2523e94dc3525325bb04f5e3687d6cd7ee93b78e"
  description = "SHA-256 of the Cinc Client RPM; the build stops if the download does not match. Change it together with chef_client_version or chef_client_rpm_url."
}
