# What the stages that run Chef on their parent's image (jira, custom) declare alike, loaded by
# their folders through a common-chef-stage.pkr.hcl symlink.

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

locals {
  workspace = "/var/tmp/jira-images"

  chef_client_rpm_url = var.chef_client_rpm_url != "" ? var.chef_client_rpm_url : "https://downloads.cinc.sh/files/stable/cinc/${var.chef_client_version}/el/9/cinc-${var.chef_client_version}-1.el9.x86_64.rpm"

  # Both Chef stages install the pinned client, run Chef, then take the workspace, the client and
  # its caches off the image; each adds what it runs (role or node) to chef_client_env.
  chef_scripts = [
    "${path.root}/../chef/scripts/install-chef-client.sh",
    "${path.root}/../chef/scripts/run-chef.sh",
    "${path.root}/../chef/scripts/cleanup.sh",
  ]
  chef_client_env = [
    "WORKSPACE=${local.workspace}",
    "CHEF_CLIENT_VERSION=${var.chef_client_version}",
    "CHEF_CLIENT_RPM_URL=${local.chef_client_rpm_url}",
    "CHEF_CLIENT_RPM_SHA256=${var.chef_client_rpm_sha256}",
  ]
}
