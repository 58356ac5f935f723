# Plugin requirements for `packer init` (Packer >= 1.9). Kept alone in this folder: the stage
# folders below must not contain it, because Packer 1.6.6 (used by this project's tests) rejects
# `required_plugins`, and Packer does not load sub-folders, so `packer init packer/` reads only
# this file.
packer {
  required_version = ">= 1.9.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0, < 2.0.0"
    }
  }
}
