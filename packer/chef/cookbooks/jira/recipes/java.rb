package node['jira']['java']['package']
