# Chef client configuration for image builds: local mode (chef-zero) with everything taken from
# this uploaded workspace, and every cache kept inside it so that cleanup.sh removes them with it.
workspace = File.expand_path(File.dirname(__FILE__))

local_mode true
chef_repo_path workspace
cookbook_path [File.join(workspace, 'cookbooks')]
role_path File.join(workspace, 'roles')
node_path File.join(workspace, 'nodes')
file_cache_path File.join(workspace, '.cache')
file_backup_path File.join(workspace, '.backup')
log_location STDOUT
