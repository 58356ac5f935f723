group node['jira']['group'] do
  system true
end

user node['jira']['user'] do
  gid node['jira']['group']
  home node['jira']['home']
  shell '/sbin/nologin'
  system true
  manage_home false
end

directory node['jira']['home'] do
  owner node['jira']['user']
  group node['jira']['group']
  mode '0750'
  recursive true
end
