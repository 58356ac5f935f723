# What runs at each start of Jira, before it (systemd ExecStartPre, as root): the helpers that read
# the launch settings as data and apply them. Not environment-specific: installed once, in the
# jira stage. python3 parses JSON secrets, base URLs and server.xml.
helper_dir = node['jira']['helper_dir']

package 'python3'

directory helper_dir do
  mode '0755'
  recursive true
end

cookbook_file ::File.join(helper_dir, 'launch-env.sh') do
  source 'launch-env.sh'
  mode '0644'
end

cookbook_file ::File.join(helper_dir, 'jira-db-secret') do
  source 'jira-db-secret.sh'
  mode '0755'
end
