version = node['jira']['version']
install_root = node['jira']['install_root']
install_dir = ::File.join(install_root, version)
archive = ::File.join(node['jira']['installer_dir'], "atlassian-jira-software-#{version}.tar.gz")
installed = ::File.exist?(::File.join(install_dir, 'bin', 'start-jira.sh'))

# A checkout without `git lfs pull` uploads a ~130-byte pointer instead of the installer; say so
# instead of failing inside tar.
ruby_block "check Jira installer #{archive}" do
  block do
    unless ::File.file?(archive)
      raise "Jira installer #{archive} is missing: add packer/files/#{::File.basename(archive)} (git lfs track, git lfs pull)"
    end
    head = ::File.open(archive, 'rb') { |f| f.read(64) }.to_s
    if head.start_with?('version https://git-lfs.github.com/spec/')
      raise "#{archive} is a git-lfs pointer, not the installer: run `git lfs pull` before building"
    end
  end
  not_if { installed }
end

directory install_root do
  mode '0755'
  recursive true
end

archive_file archive do
  destination install_dir
  strip_components 1
  owner 'root'
  group 'root'
  not_if { installed }
end

# Tomcat writes only into these; the rest of the installation stays owned by root.
%w(logs temp work).each do |dir|
  directory ::File.join(install_dir, dir) do
    owner node['jira']['user']
    group node['jira']['group']
    mode '0750'
  end
end

link ::File.join(install_root, 'current') do
  to install_dir
end
