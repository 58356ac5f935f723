# Plugin requirements for `packer init` (Packer >= 1.10). Kept alone in this folder: the stage
# folders below must not contain it, because Packer 1.6.6 (used by this project's tests) rejects
# `required_plugins`, and Packer does not load sub-folders, so `packer init packer/` reads only
# this file.
#
# Packer >= 1.10 no longer bundles the amazon plugin, so amazon-ebs always comes from the plugin
# installed here. The stage folders use `imds_support` on amazon-ebs (plugin >= 1.2.2) and
# `metadata_options` (plugin >= 1.0.0); this range allows both.
packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0, < 2.0.0"
    }
  }
}
