import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { PROJECT_ROOT } from "./helpers/pulumi-mocks.ts";
import { tempDir } from "./helpers/temp-dir.ts";

// The image check (packer/common/scripts/verify-jira-image.sh) run against prepared roots laid out
// as the jira cookbook leaves a built instance: the unit, setenv.sh and dbconfig rendered from the
// cookbook for prod, Jira 9.12's own server.xml, the cookbook's start-up helpers.
const SCRIPT = join(PROJECT_ROOT, "packer", "common", "scripts", "verify-jira-image.sh");
const CHEF = join(PROJECT_ROOT, "packer", "chef");
const COOKBOOK = join(CHEF, "cookbooks", "jira");
const FIXTURES = join(PROJECT_ROOT, "test", "fixtures", "chef");
const VERSION = "9.12.15";
const JIRA = `/opt/atlassian/jira/${VERSION}`;
const HOME = "/var/atlassian/application-data/jira";
const EXPECTED = { JIRA_VERSION: VERSION, JVM_MINIMUM_MEMORY: "4096m", JVM_MAXIMUM_MEMORY: "8192m" };

function requireTool(command: string, aptPackage: string): void {
  if (spawnSync("sh", ["-c", `command -v ${command}`]).status !== 0) {
    throw new Error(`${command} is not installed: apt-get install -y ${aptPackage}`);
  }
}

async function render(target: string, command: string, ...args: string[]): Promise<string> {
  const { stdout } = await execa("ruby", [join(FIXTURES, "render.rb"), CHEF, target, command, ...args], { stripFinalNewline: false });
  return stdout;
}

async function renderErb(template: string, assigns: Record<string, unknown>): Promise<string> {
  const script =
    "require 'erb'; require 'json'; " +
    "JSON.parse(ARGV[1]).each { |k, v| instance_variable_set(\"@#{k}\", v) }; " +
    "print ERB.new(File.read(ARGV[0]), trim_mode: '-').result(binding)";
  const { stdout } = await execa("ruby", ["-e", script, join(COOKBOOK, "templates", template), JSON.stringify(assigns)]);
  return stdout;
}

function put(root: string, path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
  chmodSync(join(root, path), mode);
}

let rendered: { unit: string; setenv: string; dbconfig: string; startEnv: string };

/** A root that passes every check: what Chef and its cleanup leave on a prod build instance. */
function imageRoot(): string {
  const root = tempDir("image-check-");
  put(root, `${JIRA}/bin/start-jira.sh`, "#!/bin/sh\n", 0o755);
  put(root, `${JIRA}/bin/setenv.sh`, rendered.setenv);
  put(root, `${JIRA}/conf/server.xml`, readFileSync(join(FIXTURES, "jira-9.12-server.xml"), "utf8"));
  symlinkSync(JIRA, join(root, "opt", "atlassian", "jira", "current"));
  put(root, "/etc/systemd/system/jira.service", rendered.unit);
  mkdirSync(join(root, "etc", "systemd", "system", "multi-user.target.wants"));
  symlinkSync("/etc/systemd/system/jira.service", join(root, "etc", "systemd", "system", "multi-user.target.wants", "jira.service"));
  put(root, "/etc/jira-images/start.env", rendered.startEnv);
  put(root, "/etc/jira-images/dbconfig.xml.tmpl", rendered.dbconfig, 0o640);
  const helpers: Record<string, [string, number]> = {
    "launch-env.sh": ["launch-env.sh", 0o644],
    "jira_server_xml.py": ["jira_server_xml.py", 0o644],
    "jira-cluster": ["jira-cluster.sh", 0o755],
    "jira-proxy": ["jira-proxy.sh", 0o755],
    "jira-db-secret": ["jira-db-secret.sh", 0o755],
  };
  for (const [name, [source, mode]] of Object.entries(helpers)) {
    put(root, `/opt/jira-images/bin/${name}`, readFileSync(join(COOKBOOK, "files", source), "utf8"), mode);
  }
  put(root, "/usr/lib/jvm/java-17-amazon-corretto/bin/java", "#!/bin/sh\n", 0o755);
  const uid = process.getuid!();
  put(root, "/etc/passwd", `root:x:0:0:root:/root:/bin/bash\njira:x:${uid}:${uid}::${HOME}:/sbin/nologin\n`);
  mkdirSync(join(root, HOME), { recursive: true });
  mkdirSync(join(root, "var", "tmp"), { recursive: true });
  return root;
}

function check(root: string, env: Record<string, string> = {}) {
  return execa("bash", [SCRIPT], {
    env: { PATH: "/usr/bin:/bin", TARGET_ROOT: root, ...EXPECTED, ...env },
    extendEnv: false,
    reject: false,
  });
}

/** Fails with exactly one failed check, the one named. */
async function failsOnly(root: string, name: string, found: RegExp, env: Record<string, string> = {}) {
  const result = await check(root, env);
  assert.equal(result.exitCode, 1, result.stdout + result.stderr);
  const failed = result.stderr.split("\n").filter((line) => line.includes(": FAILED "));
  assert.equal(failed.length, 1, `expected only "${name}" to fail:\n${result.stderr}`);
  assert.ok(failed[0]!.startsWith(`verify-jira-image: FAILED ${name}: `), failed[0]);
  assert.match(failed[0]!, found);
  assert.match(result.stderr, /1 check\(s\) failed; the image is not made/);
}

describe("verify-jira-image.sh: the image check of the jira and custom stages", function () {
  this.timeout(30_000);

  before(async function () {
    requireTool("ruby", "ruby");
    requireTool("python3", "python3");
    const { jira } = JSON.parse(await render("prod", "attributes"));
    rendered = {
      unit: await render("prod", "unit"),
      setenv: await render("prod", "setenv", join(FIXTURES, "jira-9.12-setenv.sh")),
      dbconfig: await renderErb("dbconfig.xml.erb", { db: jira.db }),
      startEnv: await renderErb("start.env.erb", {
        install: "/opt/atlassian/jira/current",
        http_port: jira.http_port,
        home: jira.home,
        user: jira.user,
        group: jira.group,
        shared_home: jira.cluster.shared_home,
        ehcache_listener_port: jira.cluster.ehcache_listener_port,
        ehcache_object_port: jira.cluster.ehcache_object_port,
      }),
    };
  });

  it("passes on what the cookbook leaves for prod, printing each check", async function () {
    const result = await check(imageRoot());
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, /ok: bin\/setenv\.sh starts Jira with the role's heap 4096m\/8192m/);
    assert.match(result.stdout, /ok: jira\.service enabled, after cloud-final\.service, Restart=on-failure RestartSec=60/);
    assert.match(result.stdout, /ok: conf\/server\.xml has one live connector on port 8080/);
    assert.match(result.stdout, /every check passed/);
  });

  it("reports every check on an empty root instead of stopping at the first", async function () {
    const result = await check(tempDir("image-check-empty-"));
    assert.equal(result.exitCode, 1);
    const names = [...result.stderr.matchAll(/^verify-jira-image: FAILED ([^:]+):/gm)].map((m) => m[1]);
    for (const name of ["start settings", "jira version", "jvm heap", "jira unit", "start-up helpers", "dbconfig connection properties", "server.xml connector", "java"]) {
      assert.ok(names.includes(name), `"${name}" not reported:\n${result.stderr}`);
    }
  });

  it("fails on another Jira version than the stage's", async function () {
    const wrong = await check(imageRoot(), { JIRA_VERSION: "10.3.4" });
    assert.equal(wrong.exitCode, 1);
    assert.match(wrong.stderr, /^verify-jira-image: FAILED jira version: \/opt\/atlassian\/jira\/10\.3\.4\/bin\/start-jira\.sh missing; installed: 9\.12\.15 current $/m);
    const root = imageRoot();
    rmSync(join(root, "opt", "atlassian", "jira", "current"));
    symlinkSync("/opt/atlassian/jira/9.4.0", join(root, "opt", "atlassian", "jira", "current"));
    await failsOnly(root, "jira version", /current points to '\/opt\/atlassian\/jira\/9\.4\.0'/);
  });

  it("fails on Jira's own heap lines (384m/2048m), or another role's", async function () {
    const root = imageRoot();
    copyFileSync(join(FIXTURES, "jira-9.12-setenv.sh"), join(root, JIRA, "bin", "setenv.sh"));
    const result = await check(root);
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /FAILED jvm heap: .*found: JVM_MINIMUM_MEMORY="384m"/);
    assert.match(result.stderr, /FAILED jvm heap: .*found: JVM_MAXIMUM_MEMORY="2048m"/);
    await failsOnly(imageRoot(), "jvm heap", /JVM_MAXIMUM_MEMORY="\$\{JVM_MAXIMUM_MEMORY:-2048m\}".*found: JVM_MAXIMUM_MEMORY="\$\{JVM_MAXIMUM_MEMORY:-8192m\}"/, {
      JVM_MINIMUM_MEMORY: "4096m",
      JVM_MAXIMUM_MEMORY: "2048m",
    });
  });

  it("fails on a unit that is not enabled", async function () {
    const root = imageRoot();
    rmSync(join(root, "etc", "systemd", "system", "multi-user.target.wants", "jira.service"));
    await failsOnly(root, "jira unit enabled", /multi-user\.target\.wants\/jira\.service/);
  });

  it("fails on a unit that does not wait for cloud-final.service", async function () {
    const root = imageRoot();
    put(root, "/etc/systemd/system/jira.service", rendered.unit.replace(/^Wants=.*$/m, "Wants=network-online.target"));
    await failsOnly(root, "jira unit Wants", /found: network-online\.target/);
  });

  it("fails on a unit that gives up on a failed start, or retries without a delay", async function () {
    const root = imageRoot();
    put(root, "/etc/systemd/system/jira.service", rendered.unit.replace(/^Restart=.*$/m, "Restart=no"));
    await failsOnly(root, "jira unit Restart", /found: 'no'/);
    put(root, "/etc/systemd/system/jira.service", rendered.unit.replace(/^RestartSec=.*\n/m, ""));
    await failsOnly(root, "jira unit RestartSec", /found: ''/);
  });

  it("fails on a start-up helper that is not executable, or a missing one", async function () {
    const root = imageRoot();
    chmodSync(join(root, "opt", "jira-images", "bin", "jira-proxy"), 0o644);
    await failsOnly(root, "start-up helpers", /\/opt\/jira-images\/bin\/jira-proxy \(ExecStartPre of jira\.service\) is missing or not executable/);
    const other = imageRoot();
    rmSync(join(other, "opt", "jira-images", "bin", "launch-env.sh"));
    await failsOnly(other, "start-up helpers", /launch-env\.sh is missing/);
  });

  it("fails on a dbconfig template without Atlassian's keep-alive and socket timeout", async function () {
    const root = imageRoot();
    put(root, "/etc/jira-images/dbconfig.xml.tmpl", rendered.dbconfig.replace(/;?socketTimeout=\d+/, ""));
    await failsOnly(root, "dbconfig connection properties", /found: 'tcpKeepAlive=true'/);
  });

  it("fails on a server.xml with a second live 8080 connector", async function () {
    const root = imageRoot();
    const serverXml = join(root, JIRA, "conf", "server.xml");
    const text = readFileSync(serverXml, "utf8");
    writeFileSync(serverXml, text.replace("</Service>", '<Connector port="8080" protocol="HTTP/1.1"/>\n</Service>'));
    await failsOnly(root, "server.xml connector", /expected one <Connector port="8080"> outside comments, found 2/);
  });

  it("fails without the unit's Java", async function () {
    const root = imageRoot();
    rmSync(join(root, "usr", "lib", "jvm"), { recursive: true });
    await failsOnly(root, "java", /\/usr\/lib\/jvm\/java-17-amazon-corretto\/bin\/java \(JAVA_HOME of jira\.service\) is missing/);
  });

  it("fails on a Jira home not owned by the image's jira user", async function () {
    const root = imageRoot();
    const uid = process.getuid!() + 1;
    put(root, "/etc/passwd", `jira:x:${uid}:${uid}::${HOME}:/sbin/nologin\n`);
    await failsOnly(root, "jira home owner", new RegExp(`owned by uid '${process.getuid!()}', not jira \\(uid ${uid}\\)`));
  });

  it("fails on a Chef workspace, client state or installer left on the image", async function () {
    const root = imageRoot();
    put(root, "/var/tmp/jira-images/files/atlassian-jira-software-9.12.15.tar.gz", "installer");
    await failsOnly(root, "build leftovers", /still on the image: \/var\/tmp\/jira-images \/var\/tmp\/jira-images\/files\/atlassian-jira-software-9\.12\.15\.tar\.gz/);
    const other = imageRoot();
    mkdirSync(join(other, "etc", "cinc"), { recursive: true });
    await failsOnly(other, "build leftovers", /still on the image: \/etc\/cinc$/);
  });

  it("is linked into the jira and custom stages, which run it after Chef and its cleanup and before image-cleanup.sh", function () {
    for (const stage of ["jira", "custom"]) {
      const link = join(PROJECT_ROOT, "packer", stage, "scripts", "verify-jira-image.sh");
      assert.equal(readlinkSync(link), "../../common/scripts/verify-jira-image.sh");
      const text = readFileSync(join(PROJECT_ROOT, "packer", stage, `${stage}.pkr.hcl`), "utf8");
      const chef = text.indexOf("scripts = local.chef_scripts");
      const verify = text.indexOf('script = "${path.root}/scripts/verify-jira-image.sh"');
      const cleanup = text.indexOf('script          = "${path.root}/scripts/image-cleanup.sh"');
      assert.ok(chef > 0 && verify > chef && cleanup > verify, `${stage}: Chef at ${chef}, the check at ${verify}, image-cleanup at ${cleanup}`);
      const block = text.slice(verify, cleanup);
      for (const line of ['"JIRA_VERSION=${var.jira_version}"', '"JVM_MINIMUM_MEMORY=${local.jvm.minimum_memory}"', '"JVM_MAXIMUM_MEMORY=${local.jvm.maximum_memory}"']) {
        assert.ok(block.includes(line), `${stage}: the check lacks ${line}`);
      }
    }
    // Chef's cleanup (the workspace, the client) is the last of the Chef scripts, so leftovers count.
    const common = readFileSync(join(PROJECT_ROOT, "packer", "common", "chef-stage.pkr.hcl"), "utf8");
    assert.match(common, /chef_scripts = \[[^\]]*cleanup\.sh",\s*\]/);
  });

  it("expects the heap Chef writes: the cookbook's defaults in the jira stage, each environment's role in custom (packer inspect)", async function () {
    this.timeout(60_000);
    requireTool("packer", "packer");
    const jvmOf = (stdout: string) => {
      const line = stdout.split("\n").find((l) => l.startsWith("local.jvm: "));
      assert.ok(line, `packer inspect shows no local.jvm:\n${stdout}`);
      return Object.fromEntries([...JSON.parse(line.slice("local.jvm: ".length)).matchAll(/"(\w+)" = "([^"]*)"/g)].map((m: string[]) => [m[1], m[2]]));
    };
    const base = JSON.parse(await render("role:jira-base", "attributes")).jira.jvm;
    const jira = await execa("packer", ["inspect", "packer/jira"], { cwd: PROJECT_ROOT });
    assert.deepEqual(jvmOf(jira.stdout), base);
    for (const env of ["dev", "prod"]) {
      const custom = await execa("packer", ["inspect", "-var", "source_ami=ami-0123456789abcdef0", "-var-file", `packer/custom/${env}.pkrvars.hcl`, "packer/custom"], { cwd: PROJECT_ROOT });
      assert.deepEqual(jvmOf(custom.stdout), JSON.parse(await render(env, "attributes")).jira.jvm, `custom-${env}`);
    }
  });
});
