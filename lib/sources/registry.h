/* registry: every webhook source, one SOURCE(name) line each, in the order the config
 * table, --help and the docs list them. name is the file lib/sources/<name>.c and the
 * `const struct source source_<name>` it exports; the route is that struct's .name. */
SOURCE(github)
SOURCE(gitlab)
SOURCE(jira)
SOURCE(jenkins)
SOURCE(bitbucket)
SOURCE(circleci)
SOURCE(generic)
SOURCE(pagerduty)
SOURCE(opsgenie)
SOURCE(azure_devops)
