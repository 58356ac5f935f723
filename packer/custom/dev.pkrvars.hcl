# Development environment: the seed's "software-seminar" node.
environment         = "dev"
chef_node           = "dev"
root_volume_size_gb = 20
extra_tags = {
  "jira-images:tier" = "dev"
}
