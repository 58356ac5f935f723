import { defineJiraApp, readJiraAppConfig } from "./app.ts";

// Pulumi calls the default export and makes its result the stack outputs.
export default function jiraApp() {
  return defineJiraApp(readJiraAppConfig());
}
