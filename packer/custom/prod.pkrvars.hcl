# Production environment: the seed's "software-local" node.
environment         = "prod"
chef_node           = "prod"
root_volume_size_gb = 50
extra_tags = {
  "jira-images:tier" = "prod"
}
