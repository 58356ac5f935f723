current = ::File.join(node['jira']['install_root'], 'current')

# Enabled, not started: the build instance has no database; instances start Jira at boot.
systemd_unit 'jira.service' do
  content(
    'Unit' => {
      'Description' => 'Atlassian Jira Software',
      'Wants' => 'network-online.target',
      'After' => 'network-online.target',
    },
    'Service' => {
      'Type' => 'forking',
      'User' => node['jira']['user'],
      'Group' => node['jira']['group'],
      'Environment' => [
        "JIRA_HOME=#{node['jira']['home']}",
        "JAVA_HOME=#{node['jira']['java']['home']}",
        "JVM_MINIMUM_MEMORY=#{node['jira']['jvm']['minimum_memory']}",
        "JVM_MAXIMUM_MEMORY=#{node['jira']['jvm']['maximum_memory']}",
      ],
      # '+' runs the secret helper as root: it reads the password and hands the file to jira.
      'ExecStartPre' => "+#{::File.join(node['jira']['helper_dir'], 'jira-db-secret')}",
      'ExecStart' => "#{current}/bin/start-jira.sh",
      'ExecStop' => "#{current}/bin/stop-jira.sh",
      'PIDFile' => "#{current}/work/catalina.pid",
      'LimitNOFILE' => 16384,
      'TimeoutStartSec' => 600,
      'Restart' => 'on-failure',
    },
    'Install' => {
      'WantedBy' => 'multi-user.target',
    }
  )
  action [:create, :enable]
end
