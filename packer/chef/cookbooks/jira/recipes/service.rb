# Enabled, not started: the build instance has no database; instances start Jira at boot.
systemd_unit 'jira.service' do
  content JiraImages.service_unit(node['jira'])
  action [:create, :enable]
end
