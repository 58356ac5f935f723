# What runs at each start of Jira, before it (systemd ExecStartPre, as root): the helpers that read
# the launch settings as data and apply them. Not environment-specific: installed once, in the
# jira stage. python3 parses JSON secrets, base URLs and server.xml; amazon-efs-utils mounts a
# cluster's shared home over TLS.
helper_dir = node['jira']['helper_dir']

package %w(python3 amazon-efs-utils)

directory helper_dir do
  mode '0755'
  recursive true
end

cookbook_file ::File.join(helper_dir, 'launch-env.sh') do
  source 'launch-env.sh'
  mode '0644'
end

cookbook_file ::File.join(helper_dir, 'jira_server_xml.py') do
  source 'jira_server_xml.py'
  mode '0644'
end

# The helpers jira.service runs before each start (node['jira']['service']['start_helpers']).
{
  'jira-cluster' => 'jira-cluster.sh',
  'jira-proxy' => 'jira-proxy.sh',
  'jira-db-secret' => 'jira-db-secret.sh',
}.each do |helper, source_file|
  cookbook_file ::File.join(helper_dir, helper) do
    source source_file
    mode '0755'
  end
end
