# Version and installer location come from the Packer template (JIRA_VERSION, JIRA_INSTALLER_DIR)
# so that the template variable is the single place a version is chosen.
default['jira']['version'] = ENV.fetch('JIRA_VERSION', '9.12.15')
default['jira']['installer_dir'] = ENV.fetch('JIRA_INSTALLER_DIR', '/var/tmp/jira-images/files')

default['jira']['user'] = 'jira'
default['jira']['group'] = 'jira'
default['jira']['install_root'] = '/opt/atlassian/jira'
default['jira']['home'] = '/var/atlassian/application-data/jira'

# Java comes from the OS packages: Amazon Corretto 17 (supported by Jira 9.x).
default['jira']['java']['package'] = 'java-17-amazon-corretto-headless'
default['jira']['java']['home'] = '/usr/lib/jvm/java-17-amazon-corretto'

default['jira']['jvm']['minimum_memory'] = '1024m'
default['jira']['jvm']['maximum_memory'] = '2048m'

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
default['jira']['db']['password_store'] = 'ssm' # or 'secretsmanager'
default['jira']['db']['password_name'] = '/jira-images/jira/db-password'

default['jira']['helper_dir'] = '/opt/jira-images/bin'
default['jira']['config_dir'] = '/etc/jira-images'
