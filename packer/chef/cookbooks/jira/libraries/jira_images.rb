# Plain-Ruby helpers for the jira recipes, kept free of Chef so that the tests run them as they are.
module JiraImages
  MEMORY = /\A([1-9][0-9]*)([mMgG])\z/

  # A JVM heap size as the role writes it ('4096m', '8g'), in MiB; raises on anything else.
  def self.megabytes(setting, value)
    match = MEMORY.match(value.to_s)
    raise "node['jira']['jvm']['#{setting}'] must be a size like '4096m' or '8g', not #{value.inspect}" unless match

    match[1].to_i * (match[2].casecmp?('g') ? 1024 : 1)
  end

  # Jira's bin/setenv.sh assigns JVM_MINIMUM_MEMORY and JVM_MAXIMUM_MEMORY unconditionally, which
  # overwrites whatever the service's environment says. As Atlassian's own deployment automation
  # does, rewrite those two lines: the role's sizes become the defaults, and an Environment= in a
  # systemd drop-in can still override them.
  def self.setenv_with_memory(text, minimum, maximum)
    if megabytes('minimum_memory', minimum) > megabytes('maximum_memory', maximum)
      raise "node['jira']['jvm']: minimum_memory #{minimum} is larger than maximum_memory #{maximum}"
    end

    { 'JVM_MINIMUM_MEMORY' => minimum, 'JVM_MAXIMUM_MEMORY' => maximum }.reduce(text) do |result, (variable, size)|
      line = /^#{variable}=.*$/
      unless result.match?(line)
        raise "bin/setenv.sh has no line '#{variable}=...': this Jira version sets its heap elsewhere; update JiraImages.setenv_with_memory"
      end

      result.gsub(line) { %(#{variable}="${#{variable}:-#{size}}") }
    end
  end

  # The jira.service unit as a systemd_unit content hash, from node['jira'].
  def self.service_unit(jira)
    current = ::File.join(jira['install_root'], 'current')
    helpers = jira['helper_dir']
    service = jira['service']
    {
      'Unit' => {
        'Description' => 'Atlassian Jira Software',
        # cloud-final.service runs user data, which writes the launch settings; on Amazon Linux it is
        # not ordered before multi-user.target, so Jira must wait for it explicitly.
        'Wants' => 'network-online.target cloud-final.service',
        'After' => 'network-online.target cloud-final.service',
        # A failed start (database or secret not reachable yet) is retried every RestartSec, up to
        # StartLimitBurst times within StartLimitIntervalSec; then the unit stays failed.
        'StartLimitIntervalSec' => service['start_limit_interval_sec'],
        'StartLimitBurst' => service['start_limit_burst'],
      },
      'Service' => {
        'Type' => 'forking',
        'User' => jira['user'],
        'Group' => jira['group'],
        'Environment' => [
          "JIRA_HOME=#{jira['home']}",
          "JAVA_HOME=#{jira['java']['home']}",
        ],
        # '+' runs the helpers as root: they mount the shared home, edit server.xml and read the
        # password, and hand the files they write to jira.
        'ExecStartPre' => service['start_helpers'].map { |helper| "+#{::File.join(helpers, helper)}" },
        'ExecStart' => "#{current}/bin/start-jira.sh",
        'ExecStop' => "#{current}/bin/stop-jira.sh",
        'PIDFile' => "#{current}/work/catalina.pid",
        'LimitNOFILE' => 16384,
        'TimeoutStartSec' => service['timeout_start_sec'],
        'Restart' => 'on-failure',
        'RestartSec' => service['restart_sec'],
      },
      'Install' => {
        'WantedBy' => 'multi-user.target',
      },
    }
  end
end
