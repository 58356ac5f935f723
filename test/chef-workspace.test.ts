import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { z } from "zod";
import { startImds } from "./helpers/imds.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const chefDir = join(root, "packer", "chef");
const cookbooksDir = join(chefDir, "cookbooks");

function requireTool(command: string, aptPackage: string): void {
  const probe = spawnSync("sh", ["-c", `command -v ${command}`]);
  if (probe.status !== 0) {
    throw new Error(`${command} is not installed: apt-get install -y ${aptPackage}`);
  }
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : Promise.resolve([join(dir, e.name)]))),
  );
  return nested.flat().sort();
}

const RunListItem = z.string().regex(/^(role\[[a-z0-9_-]+\]|recipe\[[a-z0-9_]+(::[a-z0-9_]+)?\])$/, "not role[x] or recipe[cookbook::recipe]");
const Attributes = z.record(z.string(), z.unknown());

const RoleSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().min(1),
  json_class: z.literal("Chef::Role"),
  chef_type: z.literal("role"),
  default_attributes: Attributes,
  override_attributes: Attributes,
  run_list: z.array(RunListItem).min(1),
});

const NodeSchema = z.strictObject({
  name: z.string().min(1),
  json_class: z.literal("Chef::Node"),
  chef_type: z.literal("node"),
  chef_environment: z.string().min(1),
  normal: Attributes,
  run_list: z.array(RunListItem).min(1),
});

async function readJsonDir<T>(dir: string, schema: z.ZodType<T>): Promise<Map<string, T>> {
  const result = new Map<string, T>();
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(".json")).sort()) {
    const text = await readFile(join(dir, file), "utf8");
    const parsed = schema.safeParse(JSON.parse(text));
    assert.ok(parsed.success, `${relative(root, join(dir, file))}: ${parsed.success ? "" : z.prettifyError(parsed.error)}`);
    result.set(file.replace(/\.json$/, ""), parsed.data);
  }
  return result;
}

function recipeFile(item: string): string {
  const [cookbook, recipe = "default"] = item.split("::");
  return join(cookbooksDir, cookbook!, "recipes", `${recipe}.rb`);
}

/** Expands a run list to recipe files, following roles; fails on unknown names and cycles. */
async function expandRunList(
  runList: string[],
  roles: Map<string, z.infer<typeof RoleSchema>>,
  seen: string[] = [],
): Promise<string[]> {
  const recipes: string[] = [];
  for (const item of runList) {
    const role = /^role\[(.+)\]$/.exec(item)?.[1];
    if (role !== undefined) {
      assert.ok(!seen.includes(role), `role cycle: ${[...seen, role].join(" -> ")}`);
      const definition = roles.get(role);
      assert.ok(definition, `run list names unknown role "${role}"`);
      recipes.push(...(await expandRunList(definition.run_list, roles, [...seen, role])));
    } else {
      const recipe = /^recipe\[(.+)\]$/.exec(item)![1]!;
      const file = recipeFile(recipe);
      assert.ok(await stat(file).catch(() => null), `run list names recipe "${recipe}" but ${relative(root, file)} does not exist`);
      recipes.push(recipe);
    }
  }
  return recipes;
}

describe("Chef workspace (packer/chef)", function () {
  before(function () {
    requireTool("ruby", "ruby");
  });

  it("passes `ruby -c` for every Ruby file (cookbook, attributes, client.rb)", async function () {
    const rubyFiles = (await filesUnder(chefDir)).filter((f) => f.endsWith(".rb"));
    assert.ok(rubyFiles.length >= 8, `found only ${rubyFiles.length} Ruby files`);
    const results = await Promise.all(rubyFiles.map((f) => execa("ruby", ["-c", f], { reject: false })));
    results.forEach((r, i) => assert.equal(r.exitCode, 0, `${relative(root, rubyFiles[i]!)}: ${r.stderr}`));
  });

  it("compiles every ERB template to valid Ruby", async function () {
    requireTool("erb", "ruby");
    const templates = (await filesUnder(chefDir)).filter((f) => f.endsWith(".erb"));
    assert.ok(templates.length >= 3);
    for (const template of templates) {
      const source = await execa("erb", ["-x", "-T", "-", template]);
      const check = await execa("ruby", ["-c"], { input: source.stdout, reject: false });
      assert.equal(check.exitCode, 0, `${relative(root, template)}: ${check.stderr}`);
    }
  });

  it("has roles and nodes that parse, match their file names, and name only existing roles and recipes", async function () {
    const roles = await readJsonDir(join(chefDir, "roles"), RoleSchema);
    const nodes = await readJsonDir(join(chefDir, "nodes"), NodeSchema);
    for (const name of ["jira-base", "jira-dev", "jira-prod"]) assert.ok(roles.has(name), `roles/${name}.json missing`);
    for (const name of ["dev", "prod"]) assert.ok(nodes.has(name), `nodes/${name}.json missing`);
    for (const [file, role] of roles) {
      assert.equal(role.name, file, `roles/${file}.json declares name "${role.name}"`);
      await expandRunList(role.run_list, roles);
    }
    for (const [file, node] of nodes) {
      assert.equal(node.name, file, `nodes/${file}.json declares name "${node.name}"`);
      assert.ok(node.run_list.includes(`role[jira-${file}]`), `node ${file} must apply role jira-${file}`);
      await expandRunList(node.run_list, roles);
    }
    assert.ok((await expandRunList(["role[jira-base]"], roles)).includes("jira::default"));
  });

  it("rejects a run list that names a missing role or recipe", async function () {
    const roles = await readJsonDir(join(chefDir, "roles"), RoleSchema);
    await assert.rejects(expandRunList(["role[jira-staging]"], roles), /unknown role "jira-staging"/);
    await assert.rejects(expandRunList(["recipe[jira::nginx]"], roles), /recipe "jira::nginx"/);
  });

  it("has a Chef node for the chef_node of every packer/custom/<env>.pkrvars.hcl", async function () {
    const customDir = join(root, "packer", "custom");
    const varFiles = (await readdir(customDir)).filter((f) => f.endsWith(".pkrvars.hcl"));
    assert.ok(varFiles.length >= 2);
    for (const file of varFiles) {
      const text = await readFile(join(customDir, file), "utf8");
      const env = file.replace(/\.pkrvars\.hcl$/, "");
      assert.match(text, new RegExp(`^environment\\s*=\\s*"${env}"$`, "m"), `${file} must set environment = "${env}"`);
      const node = /^chef_node\s*=\s*"([^"]+)"$/m.exec(text)?.[1] ?? env;
      assert.ok(await stat(join(chefDir, "nodes", `${node}.json`)).catch(() => null), `${file}: no nodes/${node}.json`);
    }
  });

  it("references only recipes, templates and files that the cookbook has", async function () {
    const cookbook = join(cookbooksDir, "jira");
    assert.match(await readFile(join(cookbook, "metadata.rb"), "utf8"), /^name 'jira'$/m);
    for (const recipe of (await filesUnder(join(cookbook, "recipes"))).filter((f) => f.endsWith(".rb"))) {
      const text = await readFile(recipe, "utf8");
      for (const m of text.matchAll(/include_recipe '([^']+)'/g)) {
        assert.ok(await stat(recipeFile(m[1]!)).catch(() => null), `${basename(recipe)}: include_recipe '${m[1]}'`);
      }
      for (const m of text.matchAll(/^\s*source '([^']+)'/gm)) {
        const dir = m[1]!.endsWith(".erb") ? "templates" : "files";
        assert.ok(await stat(join(cookbook, dir, m[1]!)).catch(() => null), `${basename(recipe)}: source '${m[1]}'`);
      }
    }
  });

  describe("launch-env.sh (reads launch.env as data)", function () {
    const library = join(cookbooksDir, "jira", "files", "launch-env.sh");
    let scratch: string;

    beforeEach(async function () {
      scratch = await mkdtemp(join(tmpdir(), "launch-env-"));
    });

    afterEach(async function () {
      await rm(scratch, { recursive: true, force: true });
    });

    async function get(content: string, key: string) {
      const file = join(scratch, "launch.env");
      await writeFile(file, content);
      return execa("bash", ["-c", `. "$1"; launch_env_get "$2" "$3"`, "bash", library, file, key], { reject: false });
    }

    it("returns the value verbatim after the first '=', query strings and shell syntax included", async function () {
      const values = [
        "https://jira.example.com/?a=1&b=2",
        "https://jira.example.com/;touch>/tmp/x",
        "$(id) `id` ${HOME} 'single' \"double\" \\back",
        "a=b=c",
        "  spaced  ",
        "",
      ];
      for (const value of values) {
        const result = await get(`JIRA_ENVIRONMENT=dev\nJIRA_BASE_URL=${value}\n`, "JIRA_BASE_URL");
        assert.equal(result.exitCode, 0, result.stderr);
        assert.equal(result.stdout, value);
      }
      assert.equal((await get("JIRA_BASE_URL=https://x.example.com", "JIRA_BASE_URL")).stdout, "https://x.example.com", "no final newline");
    });

    it("matches keys exactly, lets the last line win, and says 1 for a missing key or file", async function () {
      const content = "# comment\nJIRA_BASE_URL_OLD=old\nXJIRA_BASE_URL=x\nJIRA_BASE_URL=first\nJIRA_BASE_URL=second\n";
      assert.equal((await get(content, "JIRA_BASE_URL")).stdout, "second");
      assert.equal((await get(content, "JIRA_CLUSTER")).exitCode, 1);
      assert.equal((await get(content, "JIRA_BASE_UR")).exitCode, 1);
      const missing = await execa("bash", ["-c", `. "$1"; launch_env_get "$2" KEY`, "bash", library, join(scratch, "none")], { reject: false });
      assert.equal(missing.exitCode, 1);
    });
  });

  describe("jira-db-secret (renders dbconfig.xml at service start)", function () {
    let scratch: string;
    let configDir: string;
    let home: string;
    let fakeAws: string;
    const helper = join(cookbooksDir, "jira", "files", "jira-db-secret.sh");
    const password = `p&ss<wo>rd"'/\\&amp;`;

    async function renderErb(template: string, assigns: Record<string, unknown>): Promise<string> {
      const script =
        "require 'erb'; require 'json'; " +
        "JSON.parse(ARGV[1]).each { |k, v| instance_variable_set(\"@#{k}\", v) }; " +
        "print ERB.new(File.read(ARGV[0]), trim_mode: '-').result(binding)";
      const { stdout } = await execa("ruby", ["-e", script, template, JSON.stringify(assigns)]);
      return stdout;
    }

    beforeEach(async function () {
      scratch = await mkdtemp(join(tmpdir(), "jira-db-secret-"));
      configDir = join(scratch, "etc");
      home = join(scratch, "home");
      await mkdir(configDir);
      await mkdir(home);
      const templates = join(cookbooksDir, "jira", "templates");
      const db = {
        type: "postgres72", driver: "org.postgresql.Driver", host: "db.internal", port: 5432, name: "jira",
        schema: "public", username: "jira", pool_min_size: 5, pool_max_size: 20,
        password_store: "ssm", password_name: "/jira/dev/db-password",
      };
      await writeFile(join(configDir, "dbconfig.xml.tmpl"), await renderErb(join(templates, "dbconfig.xml.erb"), { db }));
      const user = userInfo();
      const group = spawnSync("id", ["-gn"]).stdout.toString().trim();
      await writeFile(
        join(configDir, "db-secret.env"),
        await renderErb(join(templates, "db-secret.env.erb"), {
          store: "ssm", name: "/jira/dev/db-password", home, user: user.username, group,
        }),
      );
      fakeAws = join(scratch, "aws");
      await writeFile(
        fakeAws,
        `#!/bin/sh\nprintf '%s\\n' "$*" >> "${join(scratch, "aws-calls")}"\nprintf '%s\\n' "$AWS_REGION" > "${join(scratch, "aws-region")}"\n` +
          `[ -n "$FAKE_AWS_FAIL" ] && { echo "AccessDenied" >&2; exit 254; }\n` +
          `[ -n "$FAKE_SECRET" ] && { printf '%s\\n' "$FAKE_SECRET"; exit 0; }\n` +
          `printf '%s\\n' '${password.replace(/'/g, `'\\''`)}'\n`,
      );
      await chmod(fakeAws, 0o755);
    });

    afterEach(async function () {
      await rm(scratch, { recursive: true, force: true });
    });

    function runHelper(env: Record<string, string> = {}) {
      return execa("bash", [helper], {
        reject: false,
        env: { JIRA_IMAGES_CONFIG_DIR: configDir, AWS_CLI: fakeAws, AWS_REGION: "eu-west-1", ...env },
      });
    }

    it("reads the password by name from SSM and writes it XML-escaped into a 0600 dbconfig.xml", async function () {
      const result = await runHelper();
      assert.equal(result.exitCode, 0, result.stderr);
      const calls = await readFile(join(scratch, "aws-calls"), "utf8");
      assert.equal(calls.trim(), "ssm get-parameter --name /jira/dev/db-password --with-decryption --query Parameter.Value --output text");
      const written = await readFile(join(home, "dbconfig.xml"), "utf8");
      assert.ok(written.includes("<password>p&amp;ss&lt;wo&gt;rd&quot;&apos;/\\&amp;amp;</password>"), written);
      assert.ok(written.includes("<url>jdbc:postgresql://db.internal:5432/jira</url>"));
      assert.equal((await stat(join(home, "dbconfig.xml"))).mode & 0o777, 0o600);
      assert.ok(!result.stdout.includes("p&ss") && !result.stderr.includes("p&ss"), "the password reached the output");
    });

    it("takes Secrets Manager and another secret name from launch.env written by user data", async function () {
      await writeFile(join(configDir, "launch.env"), "JIRA_DB_PASSWORD_STORE=secretsmanager\nJIRA_DB_PASSWORD_NAME=jira/prod/db\n");
      const result = await runHelper();
      assert.equal(result.exitCode, 0, result.stderr);
      const calls = await readFile(join(scratch, "aws-calls"), "utf8");
      assert.equal(calls.trim(), "secretsmanager get-secret-value --secret-id jira/prod/db --query SecretString --output text");
    });

    async function passwordWritten(): Promise<string> {
      const written = await readFile(join(home, "dbconfig.xml"), "utf8");
      const match = /<password>(.*)<\/password>/.exec(written);
      assert.ok(match, written);
      return match[1]!;
    }

    it("takes the password field of a Secrets Manager secret stored as JSON (key/value or RDS-managed)", async function () {
      await writeFile(join(configDir, "launch.env"), "JIRA_DB_PASSWORD_STORE=secretsmanager\nJIRA_DB_PASSWORD_NAME=rds!db-1\n");
      const rds = JSON.stringify({ username: "jira", password: `s3&cr"et{}`, engine: "postgres", port: 5432 });
      const result = await runHelper({ FAKE_SECRET: rds });
      assert.equal(result.exitCode, 0, result.stderr);
      assert.equal(await passwordWritten(), "s3&amp;cr&quot;et{}");
    });

    it("keeps a plain-string Secrets Manager secret whole, even one that starts with a brace", async function () {
      await writeFile(join(configDir, "launch.env"), "JIRA_DB_PASSWORD_STORE=secretsmanager\n");
      for (const secret of ["plain-Passw0rd", "{not json", "12345"]) {
        const result = await runHelper({ FAKE_SECRET: secret });
        assert.equal(result.exitCode, 0, result.stderr);
        assert.equal(await passwordWritten(), secret.replace(/&/g, "&amp;"));
      }
    });

    it("fails, writing nothing, on a JSON secret without a password field", async function () {
      await writeFile(join(configDir, "launch.env"), "JIRA_DB_PASSWORD_STORE=secretsmanager\nJIRA_DB_PASSWORD_NAME=jira/prod/db\n");
      const result = await runHelper({ FAKE_SECRET: JSON.stringify({ username: "jira", pass: "x" }) });
      assert.notEqual(result.exitCode, 0);
      assert.match(result.stderr, /"password" field/);
      assert.match(result.stderr, /jira-db-secret: error: secret jira\/prod\/db: no password in it/);
      assert.equal(await stat(join(home, "dbconfig.xml")).catch(() => null), null);
    });

    it("reads launch.env as data: a base URL with shell syntax runs nothing, and odd values change nothing", async function () {
      const marker = join(scratch, "pwned");
      await writeFile(
        join(configDir, "launch.env"),
        [
          "JIRA_ENVIRONMENT=dev",
          `JIRA_BASE_URL=https://jira.example.com/;touch>${marker}`,
          `JIRA_DB_PASSWORD_NAME_X=$(touch ${marker})`,
          `JIRA_HOME=\`touch ${marker}\``,
          "",
        ].join("\n"),
      );
      const result = await runHelper();
      assert.equal(result.exitCode, 0, result.stderr);
      assert.equal(await stat(marker).catch(() => null), null, "a launch setting was executed");
      // JIRA_HOME is the image's to decide: launch.env cannot move dbconfig.xml.
      assert.ok(await stat(join(home, "dbconfig.xml")));
      const calls = await readFile(join(scratch, "aws-calls"), "utf8");
      assert.match(calls, /--name \/jira\/dev\/db-password /);
    });

    it("asks the aws CLI in this instance's region (IMDSv2) when no AWS_REGION is set", async function () {
      const imds = await startImds({ "placement/region": "ap-southeast-2" });
      try {
        const result = await runHelper({ AWS_REGION: "", AWS_DEFAULT_REGION: "", IMDS_ENDPOINT: imds.url });
        assert.equal(result.exitCode, 0, result.stderr);
        assert.equal((await readFile(join(scratch, "aws-region"), "utf8")).trim(), "ap-southeast-2");
        assert.deepEqual(imds.requests, ["PUT /latest/api/token", "GET /latest/meta-data/placement/region"]);
        const unreachable = await runHelper({ AWS_REGION: "", AWS_DEFAULT_REGION: "", IMDS_ENDPOINT: "http://127.0.0.1:9" });
        assert.notEqual(unreachable.exitCode, 0);
        assert.match(unreachable.stderr, /jira-db-secret: error: no AWS_REGION, and cannot read this instance's region/);
      } finally {
        await imds.close();
      }
    });

    it("fails naming the parameter, and leaves no dbconfig.xml, when the secret cannot be read", async function () {
      const result = await runHelper({ FAKE_AWS_FAIL: "1" });
      assert.notEqual(result.exitCode, 0);
      assert.match(result.stderr, /jira-db-secret: error: cannot read SSM parameter \/jira\/dev\/db-password/);
      assert.equal(await stat(join(home, "dbconfig.xml")).catch(() => null), null);
    });
  });
});
