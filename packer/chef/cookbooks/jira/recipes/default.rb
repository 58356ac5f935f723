# The Jira base image: Java, the jira user, Jira from the installer archive, its service and a
# configuration with the cookbook's defaults (environments refine it with recipe[jira::config]).
include_recipe 'jira::java'
include_recipe 'jira::user'
include_recipe 'jira::install'
include_recipe 'jira::config'
include_recipe 'jira::startup'
include_recipe 'jira::service'
