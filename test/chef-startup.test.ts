import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, cp, mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import fc from "fast-check";
import { startImds, type ImdsStandIn } from "./helpers/imds.ts";
import { tempDir } from "./helpers/temp-dir.ts";

// How the Jira the images run starts: the unit, its heap, its database connection (rendered from
// the cookbook's library and templates with each environment's attributes, as Chef would).
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const chefDir = join(root, "packer", "chef");
const cookbook = join(chefDir, "cookbooks", "jira");
const fixtures = join(root, "test", "fixtures", "chef");
const renderScript = join(fixtures, "render.rb");

function requireTool(command: string, aptPackage: string): void {
  if (spawnSync("sh", ["-c", `command -v ${command}`]).status !== 0) {
    throw new Error(`${command} is not installed: apt-get install -y ${aptPackage}`);
  }
}

async function render(target: string, command: string, ...args: string[]): Promise<string> {
  const { stdout } = await execa("ruby", [renderScript, chefDir, target, command, ...args], { stripFinalNewline: false });
  return stdout;
}

async function attributes(target: string): Promise<{ jira: Record<string, any> }> {
  return JSON.parse(await render(target, "attributes"));
}

async function renderErb(template: string, assigns: Record<string, unknown>): Promise<string> {
  const script =
    "require 'erb'; require 'json'; " +
    "JSON.parse(ARGV[1]).each { |k, v| instance_variable_set(\"@#{k}\", v) }; " +
    "print ERB.new(File.read(ARGV[0]), trim_mode: '-').result(binding)";
  const { stdout } = await execa("ruby", ["-e", script, join(cookbook, "templates", template), JSON.stringify(assigns)]);
  return stdout;
}

/** A scratch settings folder with start.env rendered from the cookbook's template, like Chef's. */
async function startEnv(values: { install: string; home: string; shared: string }): Promise<string> {
  const { jira } = await attributes("prod");
  const configDir = join(tempDir("jira-start-"), "etc");
  await mkdir(configDir);
  const user = userInfo().username;
  const group = spawnSync("id", ["-gn"]).stdout.toString().trim();
  const text = await renderErb("start.env.erb", {
    install: values.install,
    http_port: jira.http_port,
    home: values.home,
    user,
    group,
    shared_home: values.shared,
    ehcache_listener_port: jira.cluster.ehcache_listener_port,
    ehcache_object_port: jira.cluster.ehcache_object_port,
  });
  await writeFile(join(configDir, "start.env"), text);
  return configDir;
}

describe("Jira start-up (cookbook library and templates, rendered per environment)", function () {
  this.timeout(60_000);

  before(function () {
    requireTool("ruby", "ruby");
  });

  it("has recipes that write what the tests render: the unit and setenv.sh from the library, dbconfig from its template", async function () {
    const recipe = (name: string) => readFile(join(cookbook, "recipes", `${name}.rb`), "utf8");
    assert.match(await recipe("service"), /^\s*content JiraImages\.service_unit\(node\['jira'\]\)$/m);
    assert.match(await recipe("config"), /JiraImages\.setenv_with_memory\(::File\.read\(setenv\), jvm\['minimum_memory'\], jvm\['maximum_memory'\]\)/);
    assert.match(await recipe("config"), /source 'dbconfig\.xml\.erb'/);
    assert.match(await recipe("default"), /include_recipe 'jira::config'\ninclude_recipe 'jira::startup'\ninclude_recipe 'jira::service'/);
    // Every helper the unit runs is installed from a file of the cookbook, next to the library it sources.
    const startup = await recipe("startup");
    for (const env of ["dev", "prod"]) {
      const { jira } = await attributes(env);
      assert.deepEqual(jira.service.start_helpers, ["jira-cluster", "jira-proxy", "jira-db-secret"], "mount first, the password last");
      for (const helper of jira.service.start_helpers as string[]) {
        assert.match(startup, new RegExp(`'${helper}' => '${helper}\\.sh'`));
        assert.ok(await stat(join(cookbook, "files", `${helper}.sh`)));
      }
    }
    assert.match(startup, /cookbook_file ::File\.join\(helper_dir, 'launch-env\.sh'\)/);
    assert.match(startup, /cookbook_file ::File\.join\(helper_dir, 'jira_server_xml\.py'\)/);
    assert.match(startup, /^package %w\(python3 amazon-efs-utils\)$/m);
  });

  describe("jira.service", function () {
    before(function () {
      requireTool("systemd-analyze", "systemd");
    });

    /**
     * systemd-analyze verify in a scratch root holding the system's units, the commands the unit
     * names, jira.service enabled (WantedBy=multi-user.target) and any extra units; verifies `what`.
     */
    async function verify(unit: string, what = "/etc/systemd/system/jira.service", extra: Record<string, string> = {}) {
      const sysroot = tempDir("jira-unit-");
      const etc = join(sysroot, "etc", "systemd", "system");
      const lib = join(sysroot, "usr", "lib", "systemd", "system");
      await mkdir(join(etc, "multi-user.target.wants"), { recursive: true });
      await mkdir(dirname(lib), { recursive: true });
      await cp("/usr/lib/systemd/system", lib, { recursive: true });
      for (const text of [unit, ...Object.values(extra)]) {
        for (const m of text.matchAll(/^Exec\w+=[+!@-]*(\/\S+)/gm)) {
          const command = join(sysroot, m[1]!);
          await mkdir(dirname(command), { recursive: true });
          await writeFile(command, "#!/bin/sh\n");
          await chmod(command, 0o755);
        }
      }
      for (const [name, text] of Object.entries(extra)) await writeFile(join(lib, name), text);
      await writeFile(join(etc, "jira.service"), unit);
      await symlink("/etc/systemd/system/jira.service", join(etc, "multi-user.target.wants", "jira.service"));
      const result = await execa("systemd-analyze", ["verify", "--man=no", `--root=${sysroot}`, what], { reject: false });
      return { exitCode: result.exitCode, stderr: result.stderr };
    }

    // cloud-final.service as cloud-init's own template renders it for Amazon Linux, and for the
    // variants (Debian, Ubuntu) that order it after multi-user.target.
    const cloudFinal = (afterMultiUser: boolean) =>
      [
        "[Unit]",
        "Description=Execute cloud user/final scripts",
        "After=network-online.target cloud-config.service rc-local.service",
        ...(afterMultiUser ? ["After=multi-user.target"] : []),
        "Wants=network-online.target cloud-config.service",
        "",
        "[Service]",
        "Type=oneshot",
        "ExecStart=/usr/bin/cloud-init modules --mode=final",
        "RemainAfterExit=yes",
        "",
        "[Install]",
        "WantedBy=cloud-init.target",
        "",
      ].join("\n");

    it("boots without an ordering cycle on Amazon Linux's cloud-final (and would have one where cloud-final follows multi-user.target)", async function () {
      const unit = await render("prod", "unit");
      const amazon = await verify(unit, "multi-user.target", { "cloud-final.service": cloudFinal(false) });
      assert.equal(amazon.exitCode, 0, amazon.stderr);
      assert.doesNotMatch(amazon.stderr, /ordering cycle|deleted/);
      const debian = await verify(unit, "multi-user.target", { "cloud-final.service": cloudFinal(true) });
      // systemd reports the cycle from whichever of its units it meets first.
      assert.match(debian.stderr, /Found ordering cycle on /, "the check must see a cycle when there is one");
      assert.match(debian.stderr, /jira\.service\/start/);
      assert.match(debian.stderr, /cloud-final\.service\/start/);
    });

    for (const env of ["dev", "prod"]) {
      it(`passes systemd-analyze verify for ${env}, and a broken unit does not`, async function () {
        const unit = await render(env, "unit");
        const ok = await verify(unit);
        assert.equal(ok.exitCode, 0, ok.stderr);
        assert.equal(ok.stderr, "");
        const broken = await verify(unit.replace(/^RestartSec=.*$/m, "RestartSec=sixty"));
        assert.match(broken.stderr, /RestartSec|sec value/);
      });
    }

    it("starts after cloud-init wrote the launch settings and retries a failed start with a delay", async function () {
      const unit = await render("prod", "unit");
      const unitSection = /\[Unit\]\n([\s\S]*?)\n\n/.exec(unit)![1]!;
      const serviceSection = /\[Service\]\n([\s\S]*?)\n\n/.exec(unit)![1]!;
      assert.match(unitSection, /^Wants=.*\bcloud-final\.service\b/m);
      assert.match(unitSection, /^After=.*\bcloud-final\.service\b/m);
      assert.match(serviceSection, /^Restart=on-failure$/m);
      const restartSec = Number(/^RestartSec=(\d+)$/m.exec(serviceSection)?.[1]);
      const interval = Number(/^StartLimitIntervalSec=(\d+)$/m.exec(unitSection)?.[1]);
      const burst = Number(/^StartLimitBurst=(\d+)$/m.exec(unitSection)?.[1]);
      assert.ok(restartSec >= 10, `RestartSec=${restartSec}: a retry must wait`);
      // The start limit must allow retries for a while: burst restarts fit in the interval.
      assert.ok(burst >= 5 && burst * restartSec <= interval, `StartLimitBurst=${burst} StartLimitIntervalSec=${interval}`);
      assert.deepEqual(
        [...serviceSection.matchAll(/^ExecStartPre=(.*)$/gm)].map((m) => m[1]),
        ["+/opt/jira-images/bin/jira-cluster", "+/opt/jira-images/bin/jira-proxy", "+/opt/jira-images/bin/jira-db-secret"],
      );
      // The heap is setenv.sh's business (below): no JVM_* here that it would silently overwrite.
      assert.doesNotMatch(unit, /JVM_(MINIMUM|MAXIMUM)_MEMORY/);
    });
  });

  describe("bin/setenv.sh heap (a copy of Jira 9.12's setenv.sh lines)", function () {
    const original = join(fixtures, "jira-9.12-setenv.sh");

    /** Sources a setenv.sh the way catalina.sh does and returns the -Xms/-Xmx it puts in JAVA_OPTS. */
    async function heap(setenv: string, env: Record<string, string> = {}): Promise<string> {
      const file = join(tempDir("setenv-"), "setenv.sh");
      await writeFile(file, setenv);
      const { stdout } = await execa("bash", ["-c", `. "$1"; printf '%s' "$JAVA_OPTS"`, "bash", file], {
        env: { ...env },
        extendEnv: false,
      });
      return stdout.split(" ").filter((o) => /^-Xm[sx]/.test(o)).join(" ");
    }

    it("is a faithful fixture: Jira's own setenv.sh ignores the heap given in the environment", async function () {
      const text = await readFile(original, "utf8");
      assert.equal(await heap(text, { JVM_MINIMUM_MEMORY: "4096m", JVM_MAXIMUM_MEMORY: "8192m" }), "-Xms384m -Xmx2048m");
    });

    for (const env of ["dev", "prod"]) {
      it(`starts ${env}'s Jira with the role's heap, which a systemd drop-in can still override`, async function () {
        const { jira } = await attributes(env);
        const rewritten = await render(env, "setenv", original);
        const { minimum_memory: min, maximum_memory: max } = jira.jvm;
        assert.equal(await heap(rewritten), `-Xms${min} -Xmx${max}`);
        assert.equal(await heap(rewritten, { JVM_MAXIMUM_MEMORY: "12g" }), `-Xms${min} -Xmx12g`);
        // Idempotent: a second Chef run (the custom stage) rewrites the same lines again.
        const again = join(tempDir("setenv-again-"), "setenv.sh");
        await writeFile(again, rewritten);
        assert.equal(await render(env, "setenv", again), rewritten);
        // Nothing else changes.
        const otherLines = (t: string) => t.split("\n").filter((l) => !/^JVM_M(IN|AX)IMUM_MEMORY=/.test(l));
        assert.deepEqual(otherLines(rewritten), otherLines(await readFile(original, "utf8")));
      });
    }

    it("gives prod 4 GiB / 8 GiB and dev 1 GiB / 2 GiB", async function () {
      assert.equal(await heap(await render("prod", "setenv", original)), "-Xms4096m -Xmx8192m");
      assert.equal(await heap(await render("dev", "setenv", original)), "-Xms1024m -Xmx2048m");
    });

    it("fails the build, naming the attribute, on a bad size or minimum above maximum", async function () {
      const lib = join(cookbook, "libraries", "jira_images.rb");
      const run = (min: string, max: string) =>
        execa("ruby", ["-r", lib, "-e", "JiraImages.setenv_with_memory(File.read(ARGV[0]), ARGV[1], ARGV[2])", original, min, max], {
          reject: false,
        });
      assert.match((await run("4096m", "8 GB")).stderr, /node\['jira'\]\['jvm'\]\['maximum_memory'\] must be a size like '4096m' or '8g', not "8 GB"/);
      assert.match((await run("4g", "2048m")).stderr, /minimum_memory 4g is larger than maximum_memory 2048m/);
      const noLines = await execa("ruby", ["-r", lib, "-e", "JiraImages.setenv_with_memory('JAVA_OPTS=x', '1g', '2g')"], { reject: false });
      assert.match(noLines.stderr, /bin\/setenv.sh has no line 'JVM_MINIMUM_MEMORY=\.\.\.'/);
    });
  });

  describe("dbconfig.xml template", function () {
    it("sets the keep-alive and socket timeout of Atlassian's PostgreSQL template, and keeps the whole pool idle", async function () {
      for (const env of ["dev", "prod"]) {
        const { jira } = await attributes(env);
        const script =
          "require 'erb'; require 'json'; @db = JSON.parse(ARGV[1]); " +
          "print ERB.new(File.read(ARGV[0]), trim_mode: '-').result(binding)";
        const { stdout } = await execa("ruby", ["-e", script, join(cookbook, "templates", "dbconfig.xml.erb"), JSON.stringify(jira.db)]);
        assert.match(stdout, /^ {4}<connection-properties>tcpKeepAlive=true;socketTimeout=240<\/connection-properties>$/m, env);
        assert.match(stdout, /<url>jdbc:postgresql:\/\//);
        assert.match(stdout, new RegExp(`<pool-max-size>${jira.db.pool_max_size}</pool-max-size>\\n {4}<pool-max-idle>${jira.db.pool_max_size}</pool-max-idle>\\n`), env);
      }
    });
  });

  describe("jira-proxy (base URL -> server.xml connector, at each start)", function () {
    const fixture = join(fixtures, "jira-9.12-server.xml");
    const helper = join(cookbook, "files", "jira-proxy.sh");
    let configDir: string;
    let serverXml: string;
    let scratch: string;

    before(function () {
      requireTool("python3", "python3");
    });

    beforeEach(async function () {
      scratch = tempDir("jira-proxy-");
      const install = join(scratch, "jira");
      await mkdir(join(install, "conf"), { recursive: true });
      serverXml = join(install, "conf", "server.xml");
      await cp(fixture, serverXml);
      configDir = await startEnv({ install, home: join(scratch, "home"), shared: join(scratch, "shared") });
    });

    async function run(launch: string | undefined) {
      if (launch !== undefined) await writeFile(join(configDir, "launch.env"), launch);
      return execa("bash", [helper], { reject: false, env: { JIRA_IMAGES_CONFIG_DIR: configDir } });
    }

    /** The live connectors' attributes, read back with Python's XML parser. */
    async function connectors(): Promise<Record<string, string>[]> {
      const script = "import json, sys, xml.etree.ElementTree as E; print(json.dumps([c.attrib for c in E.parse(sys.argv[1]).iter('Connector')]))";
      return JSON.parse((await execa("python3", ["-c", script, serverXml])).stdout);
    }

    function proxyOf(connector: Record<string, string>) {
      const { proxyName, proxyPort, scheme, secure } = connector;
      return { proxyName, proxyPort, scheme, secure };
    }

    const cases: [string, Record<string, string>][] = [
      ["https://jira.example.com", { proxyName: "jira.example.com", proxyPort: "443", scheme: "https", secure: "true" }],
      ["https://Jira.Example.com:8443/?a=1&b=2", { proxyName: "jira.example.com", proxyPort: "8443", scheme: "https", secure: "true" }],
      ["http://jira.internal.example.com/", { proxyName: "jira.internal.example.com", proxyPort: "80", scheme: "http", secure: "false" }],
      ["http://10.0.1.5:8081", { proxyName: "10.0.1.5", proxyPort: "8081", scheme: "http", secure: "false" }],
    ];
    for (const [url, expected] of cases) {
      it(`sets proxyName, proxyPort, scheme and secure for ${url}, changing nothing else`, async function () {
        const result = await run(`JIRA_ENVIRONMENT=prod\nJIRA_BASE_URL=${url}\n`);
        assert.equal(result.exitCode, 0, result.stderr);
        const live = await connectors();
        assert.equal(live.length, 1, "the example connectors in comments stay comments");
        assert.deepEqual(proxyOf(live[0]!), expected);
        assert.equal(live[0]!.port, "8080");
        const added = ` proxyName="${expected.proxyName}" proxyPort="${expected.proxyPort}" scheme="${expected.scheme}" secure="${expected.secure}"`;
        assert.equal((await readFile(serverXml, "utf8")).replace(added, ""), await readFile(fixture, "utf8"));
      });
    }

    it("removes the attributes when the base URL goes away, back to Jira's own file byte for byte", async function () {
      assert.equal((await run("JIRA_BASE_URL=https://jira.example.com\n")).exitCode, 0);
      assert.equal((await run("JIRA_BASE_URL=http://other.example.com\n")).exitCode, 0, "replaced, not added twice");
      assert.deepEqual(proxyOf((await connectors())[0]!), { proxyName: "other.example.com", proxyPort: "80", scheme: "http", secure: "false" });
      for (const launch of ["JIRA_ENVIRONMENT=prod\n", "JIRA_BASE_URL=\n"]) {
        const result = await run(launch);
        assert.equal(result.exitCode, 0, result.stderr);
        assert.equal(await readFile(serverXml, "utf8"), await readFile(fixture, "utf8"));
      }
    });

    it("runs nothing from a base URL with shell syntax and writes only its host", async function () {
      const marker = join(scratch, "pwned");
      const result = await run(`JIRA_BASE_URL=https://jira.example.com/;touch>${marker}\n`);
      assert.equal(result.exitCode, 0, result.stderr);
      assert.equal(await stat(marker).catch(() => null), null);
      assert.equal((await connectors())[0]!.proxyName, "jira.example.com");
      assert.match(result.stderr, /warning: the path .* is not applied/);
    });

    for (const url of ["ftp://jira.example.com", "https://user:pw@jira.example.com", 'https://a"b.example.com', "https://jira.example.com:99999", "https://jira example.com", "https://jira.example.com:0", "https://", "https://[jira.example.com/"]) {
      it(`refuses ${JSON.stringify(url)} and leaves server.xml as it was`, async function () {
        const result = await run(`JIRA_BASE_URL=${url}\n`);
        assert.notEqual(result.exitCode, 0);
        assert.match(result.stderr, /jira-proxy: error: .*server\.xml: JIRA_BASE_URL/);
        assert.equal(await readFile(serverXml, "utf8"), await readFile(fixture, "utf8"));
      });
    }

    it("works as the recipe installs it: helpers without .sh next to launch-env.sh and jira_server_xml.py", async function () {
      const startup = await readFile(join(cookbook, "recipes", "startup.rb"), "utf8");
      const bin = join(scratch, "opt-jira-images-bin");
      await mkdir(bin);
      const installed = [...startup.matchAll(/'([\w-]+)' => '([\w.-]+\.sh)'/g)].map((m) => [m[1]!, m[2]!] as const);
      installed.push(["launch-env.sh", "launch-env.sh"], ["jira_server_xml.py", "jira_server_xml.py"]);
      for (const [target, source] of installed) await cp(join(cookbook, "files", source), join(bin, target));
      await chmod(join(bin, "jira-proxy"), 0o755);
      await writeFile(join(configDir, "launch.env"), "JIRA_BASE_URL=https://jira.example.com\n");
      const result = await execa(join(bin, "jira-proxy"), [], { reject: false, env: { JIRA_IMAGES_CONFIG_DIR: configDir } });
      assert.equal(result.exitCode, 0, result.stderr);
      assert.equal((await connectors())[0]!.proxyName, "jira.example.com");
    });

    it("for any URL, either refuses it or writes the URL's own host, a valid port and matching scheme/secure (property)", async function () {
      const junk = fc.constantFrom(";", "&", "|", "<", ">", "(", ")", "$", "`", '"', "'", "\\", " ", "@", "%", "#", "?", ":", "/", "[", "]", "\t");
      const url = fc.oneof(
        fc.webUrl({ validSchemes: ["http", "https"], withQueryParameters: true, withFragments: true }),
        fc.tuple(fc.webUrl({ validSchemes: ["http", "https"] }), fc.array(fc.oneof(junk, fc.string({ maxLength: 3 })), { maxLength: 6 }), fc.nat(9))
          .map(([u, extra, at]) => { const i = Math.min(at + 8, u.length); return u.slice(0, i) + extra.join("") + u.slice(i); }),
      );
      const urls = fc.sample(url, { numRuns: 300, seed: 13 });
      // One Python process for the whole sample: parse, edit the fixture, parse the result back.
      const script = [
        "import json, sys",
        "sys.path.insert(0, sys.argv[1])",
        "import jira_server_xml as j",
        "text = open(sys.argv[2], encoding='utf-8').read()",
        "out = []",
        "for url in json.load(sys.stdin):",
        "    try:",
        "        attributes = j.proxy_attributes(url)",
        "        j.check(j.with_proxy(text, '8080', attributes), '8080', attributes)",
        "        out.append(attributes)",
        "    except j.Invalid:",
        "        out.append(None)",
        "print(json.dumps(out))",
      ].join("\n");
      const { stdout } = await execa("python3", ["-c", script, join(cookbook, "files"), fixture], { input: JSON.stringify(urls), env: { PYTHONDONTWRITEBYTECODE: "1" } });
      const results: (Record<string, string> | null)[] = JSON.parse(stdout);
      let accepted = 0;
      results.forEach((attributes, i) => {
        if (attributes === null) return;
        accepted++;
        const whatwg = new URL(urls[i]!);
        assert.match(attributes.proxyName!, /^[a-z0-9.-]+$/, urls[i]);
        assert.equal(attributes.proxyName, whatwg.hostname, `${urls[i]}: the host a browser would use`);
        assert.equal(attributes.scheme, whatwg.protocol.slice(0, -1), urls[i]);
        assert.equal(attributes.secure, String(attributes.scheme === "https"), urls[i]);
        assert.equal(attributes.proxyPort, whatwg.port || (attributes.scheme === "https" ? "443" : "80"), urls[i]);
      });
      assert.ok(accepted >= 100, `only ${accepted} of ${urls.length} accepted`);
      assert.ok(accepted < urls.length, "the junk must be refused sometimes");
    });

    it("fails, naming the ports it found, when server.xml has no live connector on the port", async function () {
      const text = await readFile(fixture, "utf8");
      await writeFile(serverXml, text.replace('<Connector port="8080" relaxedPathChars', '<Connector port="9090" relaxedPathChars'));
      const result = await run("JIRA_BASE_URL=https://jira.example.com\n");
      assert.notEqual(result.exitCode, 0);
      assert.match(result.stderr, /expected one <Connector port="8080"> outside comments, found 0 \(connector ports: 9090\)/);
    });
  });

  describe("jira-cluster (EFS shared home and cluster.properties, at each start)", function () {
    const helper = join(cookbook, "files", "jira-cluster.sh");
    const instanceId = "i-0123456789abcdef0";
    const efs = "fs-0123456789abcdef0.efs.eu-west-1.amazonaws.com";
    let imds: ImdsStandIn;
    let scratch: string;
    let home: string;
    let shared: string;
    let fakeBin: string;
    let configDir: string;

    before(async function () {
      requireTool("curl", "curl");
      imds = await startImds({ "instance-id": instanceId, "local-ipv4": "10.0.1.23" });
    });

    after(async function () {
      await imds.close();
    });

    beforeEach(async function () {
      imds.requests.length = 0;
      scratch = tempDir("jira-cluster-");
      home = join(scratch, "home");
      shared = join(scratch, "shared");
      await mkdir(home);
      configDir = await startEnv({ install: join(scratch, "jira"), home, shared });
      // mount and mountpoint stand-ins: mount records its arguments and marks the folder mounted.
      fakeBin = join(scratch, "bin");
      await mkdir(fakeBin);
      await writeFile(
        join(fakeBin, "mount"),
        `#!/bin/sh\nprintf '%s\\n' "$*" >> "${scratch}/mount-calls"\n[ -z "$FAKE_MOUNT_FAIL" ] || exit 32\ntouch "${scratch}/mounted"\n`,
      );
      await writeFile(join(fakeBin, "mountpoint"), `#!/bin/sh\n[ -e "${scratch}/mounted" ]\n`);
      await chmod(join(fakeBin, "mount"), 0o755);
      await chmod(join(fakeBin, "mountpoint"), 0o755);
    });

    async function run(launch: string, env: Record<string, string> = {}) {
      await writeFile(join(configDir, "launch.env"), launch);
      return execa("bash", [helper], {
        reject: false,
        env: { JIRA_IMAGES_CONFIG_DIR: configDir, IMDS_ENDPOINT: imds.url, PATH: `${fakeBin}:${process.env.PATH}`, ...env },
      });
    }

    const mountCalls = async () => (await readFile(join(scratch, "mount-calls"), "utf8").catch(() => "")).trim().split("\n").filter(Boolean);

    it("mounts the EFS shared home over TLS and writes cluster.properties with the instance id as node id", async function () {
      const result = await run(`JIRA_ENVIRONMENT=prod\nJIRA_CLUSTER=true\nJIRA_SHARED_HOME_EFS=${efs}\n`);
      assert.equal(result.exitCode, 0, result.stderr);
      assert.deepEqual(await mountCalls(), [`-t efs -o tls ${efs}:/ ${shared}`]);
      assert.equal(imds.requests[0], "PUT /latest/api/token", "IMDSv2: a token first");
      const { jira } = await attributes("prod");
      assert.equal(
        await readFile(join(home, "cluster.properties"), "utf8"),
        [
          "# Written by jira-images (jira-cluster) at each start from the launch settings; edits are lost.",
          `jira.node.id = ${instanceId}`,
          `jira.shared.home = ${shared}`,
          "ehcache.peer.discovery = default",
          "ehcache.listener.hostName = 10.0.1.23",
          `ehcache.listener.port = ${jira.cluster.ehcache_listener_port}`,
          `ehcache.object.port = ${jira.cluster.ehcache_object_port}`,
          "",
        ].join("\n"),
      );
      assert.equal((await stat(join(home, "cluster.properties"))).mode & 0o777, 0o640);
      // A restart finds the share mounted and does not mount it again.
      assert.equal((await run(`JIRA_CLUSTER=true\nJIRA_SHARED_HOME_EFS=${efs}\n`)).exitCode, 0);
      assert.equal((await mountCalls()).length, 1);
    });

    it("runs standalone without JIRA_CLUSTER=true: no mount, no metadata, a stale cluster.properties removed", async function () {
      await writeFile(join(home, "cluster.properties"), "jira.node.id = old\n");
      for (const launch of ["JIRA_ENVIRONMENT=dev\n", "JIRA_CLUSTER=false\n"]) {
        const result = await run(launch);
        assert.equal(result.exitCode, 0, result.stderr);
        assert.equal(await stat(join(home, "cluster.properties")).catch(() => null), null);
      }
      assert.deepEqual(await mountCalls(), []);
      assert.deepEqual(imds.requests, []);
    });

    const refused: [string, RegExp][] = [
      ["JIRA_CLUSTER=yes\n", /JIRA_CLUSTER in .* must be true or false, not 'yes'/],
      ["JIRA_CLUSTER=true\n", /JIRA_CLUSTER=true needs JIRA_SHARED_HOME_EFS/],
      ["JIRA_CLUSTER=true\nJIRA_SHARED_HOME_EFS=fs-1;touch${MARKER}\n", /JIRA_SHARED_HOME_EFS in .* must be an EFS DNS name/],
      ["JIRA_CLUSTER=true\nJIRA_SHARED_HOME_EFS=$(touch ${MARKER})\n", /JIRA_SHARED_HOME_EFS in .* must be an EFS DNS name/],
    ];
    for (const [launch, message] of refused) {
      it(`refuses ${JSON.stringify(launch.trim())} before mounting anything`, async function () {
        const marker = join(scratch, "pwned");
        const result = await run(launch.replace("${MARKER}", marker));
        assert.notEqual(result.exitCode, 0);
        assert.match(result.stderr, message);
        assert.deepEqual(await mountCalls(), []);
        assert.equal(await stat(marker).catch(() => null), null);
        assert.equal(await stat(join(home, "cluster.properties")).catch(() => null), null);
      });
    }

    it("fails with the reason, writing no cluster.properties, when the mount fails or IMDS refuses", async function () {
      const launch = `JIRA_CLUSTER=true\nJIRA_SHARED_HOME_EFS=${efs}\n`;
      const mountFails = await run(launch, { FAKE_MOUNT_FAIL: "1" });
      assert.notEqual(mountFails.exitCode, 0);
      assert.match(mountFails.stderr, /jira-cluster: error: cannot mount fs-.*:\/ on .*: is the mount target/);
      const noImds = await run(launch, { IMDS_ENDPOINT: "http://127.0.0.1:9" });
      assert.notEqual(noImds.exitCode, 0);
      assert.match(noImds.stderr, /jira-cluster: error: cannot read the instance id from the instance metadata service/);
      assert.equal(await stat(join(home, "cluster.properties")).catch(() => null), null);
    });
  });
});
