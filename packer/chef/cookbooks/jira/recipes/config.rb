# Everything environment-specific: the JVM heap, jira-config.properties, the dbconfig.xml template
# (without the password) and the name of the secret that holds the password. Runs in both Chef
# stages.
config_dir = node['jira']['config_dir']
db = node['jira']['db']

unless %w(ssm secretsmanager).include?(db['password_store'])
  raise "node['jira']['db']['password_store'] must be 'ssm' or 'secretsmanager', not #{db['password_store'].inspect}"
end

directory config_dir do
  owner 'root'
  group node['jira']['group']
  mode '0750'
end

# Jira starts with the role's heap: setenv.sh's own assignments would overwrite the environment.
setenv = ::File.join(node['jira']['install_root'], 'current', 'bin', 'setenv.sh')
jvm = node['jira']['jvm']
file setenv do
  content(lazy { JiraImages.setenv_with_memory(::File.read(setenv), jvm['minimum_memory'], jvm['maximum_memory']) })
end

template ::File.join(node['jira']['home'], 'jira-config.properties') do
  source 'jira-config.properties.erb'
  owner node['jira']['user']
  group node['jira']['group']
  mode '0640'
  variables(properties: node['jira']['config_properties'].to_h)
end

template ::File.join(config_dir, 'dbconfig.xml.tmpl') do
  source 'dbconfig.xml.erb'
  owner 'root'
  group node['jira']['group']
  mode '0640'
  variables(db: db.to_h)
end

# What the start-up helpers need to know about this image.
template ::File.join(config_dir, 'start.env') do
  source 'start.env.erb'
  owner 'root'
  group 'root'
  mode '0644'
  variables(
    install: ::File.join(node['jira']['install_root'], 'current'),
    http_port: node['jira']['http_port'],
    home: node['jira']['home'],
    user: node['jira']['user'],
    group: node['jira']['group'],
    shared_home: node['jira']['cluster']['shared_home'],
    ehcache_listener_port: node['jira']['cluster']['ehcache_listener_port'],
    ehcache_object_port: node['jira']['cluster']['ehcache_object_port']
  )
end

# Only the secret's name and store; the value is fetched at service start.
template ::File.join(config_dir, 'db-secret.env') do
  source 'db-secret.env.erb'
  owner 'root'
  group 'root'
  mode '0644'
  variables(
    store: db['password_store'],
    name: db['password_name'],
    home: node['jira']['home'],
    user: node['jira']['user'],
    group: node['jira']['group']
  )
end
