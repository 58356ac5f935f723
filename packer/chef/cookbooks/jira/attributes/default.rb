# Version and installer location come from the Packer template (JIRA_VERSION, JIRA_INSTALLER_DIR)
# so that the template variable is the single place a version is chosen.
default['jira']['version'] = ENV.fetch('JIRA_VERSION', '9.12.15')
default['jira']['installer_dir'] = ENV.fetch('JIRA_INSTALLER_DIR', '/var/tmp/jira-images/files')

default['jira']['user'] = 'jira'
default['jira']['group'] = 'jira'
default['jira']['install_root'] = '/opt/atlassian/jira'
default['jira']['home'] = '/var/atlassian/application-data/jira'
# Tomcat's HTTP connector (conf/server.xml); jira-proxy sets its proxy attributes at each start.
default['jira']['http_port'] = 8080

# Data Center cluster, when the launch settings say JIRA_CLUSTER=true: where jira-cluster mounts
# the EFS shared home, and the fixed cache replication ports nodes reach each other on.
default['jira']['cluster']['shared_home'] = '/var/atlassian/application-data/jira-shared'
default['jira']['cluster']['ehcache_listener_port'] = 40001
default['jira']['cluster']['ehcache_object_port'] = 40011

# Java comes from the OS packages: Amazon Corretto 17 (supported by Jira 9.x).
default['jira']['java']['package'] = 'java-17-amazon-corretto-headless'
default['jira']['java']['home'] = '/usr/lib/jvm/java-17-amazon-corretto'

# Written into Jira's bin/setenv.sh as the heap defaults (see JiraImages.setenv_with_memory).
default['jira']['jvm']['minimum_memory'] = '1024m'
default['jira']['jvm']['maximum_memory'] = '2048m'

# jira.service: the helpers run before each start (from helper_dir, as root, in this order), and
# how a failed start is retried.
default['jira']['service']['start_helpers'] = %w(jira-cluster jira-proxy jira-db-secret)
default['jira']['service']['timeout_start_sec'] = 600
default['jira']['service']['restart_sec'] = 60
default['jira']['service']['start_limit_interval_sec'] = 3600
default['jira']['service']['start_limit_burst'] = 20

# Written to <jira home>/jira-config.properties, one key=value per entry.
default['jira']['config_properties'] = {
  'jira.autoexport' => 'false',
}

# dbconfig.xml, minus the password. The password never enters the image: at each service start,
# jira-db-secret reads it by name from SSM Parameter Store or Secrets Manager and renders
# <jira home>/dbconfig.xml.
default['jira']['db']['type'] = 'postgres72'
default['jira']['db']['driver'] = 'org.postgresql.Driver'
default['jira']['db']['host'] = 'localhost'
default['jira']['db']['port'] = 5432
default['jira']['db']['name'] = 'jiradb'
default['jira']['db']['schema'] = 'public'
default['jira']['db']['username'] = 'jira'
default['jira']['db']['pool_min_size'] = 20
default['jira']['db']['pool_max_size'] = 20
# JDBC connection properties, as in Atlassian's PostgreSQL dbconfig.xml: keep-alive and a socket
# timeout (seconds) so that a connection dropped by the network does not hang a thread forever.
default['jira']['db']['connection_properties'] = {
  'tcpKeepAlive' => 'true',
  'socketTimeout' => '240',
}
default['jira']['db']['password_store'] = 'ssm' # or 'secretsmanager'
default['jira']['db']['password_name'] = '/jira-images/jira/db-password'

default['jira']['helper_dir'] = '/opt/jira-images/bin'
default['jira']['config_dir'] = '/etc/jira-images'
