import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
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
    for (const env of ["dev", "prod"]) assert.ok((await recipe("default")).includes("include_recipe 'jira::config'"), env);
  });

  describe("jira.service", function () {
    before(function () {
      requireTool("systemd-analyze", "systemd");
    });

    /** systemd-analyze verify in a scratch root holding the unit, the system's units and the commands it names. */
    async function verify(unit: string): Promise<{ exitCode: number | undefined; stderr: string }> {
      const sysroot = tempDir("jira-unit-");
      await mkdir(join(sysroot, "etc", "systemd", "system"), { recursive: true });
      await mkdir(join(sysroot, "usr", "lib", "systemd"), { recursive: true });
      await cp("/usr/lib/systemd/system", join(sysroot, "usr", "lib", "systemd", "system"), { recursive: true });
      for (const m of unit.matchAll(/^Exec\w+=[+!@-]*(\/\S+)/gm)) {
        const command = join(sysroot, m[1]!);
        await mkdir(dirname(command), { recursive: true });
        await writeFile(command, "#!/bin/sh\n");
        await chmod(command, 0o755);
      }
      await writeFile(join(sysroot, "etc", "systemd", "system", "jira.service"), unit);
      const result = await execa("systemd-analyze", ["verify", "--man=no", `--root=${sysroot}`, "/etc/systemd/system/jira.service"], {
        reject: false,
      });
      return { exitCode: result.exitCode, stderr: result.stderr };
    }

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
      assert.match(serviceSection, /^ExecStartPre=\+\/opt\/jira-images\/bin\/jira-db-secret$/m);
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
    it("sets the keep-alive and socket timeout of Atlassian's PostgreSQL template", async function () {
      for (const env of ["dev", "prod"]) {
        const { jira } = await attributes(env);
        const script =
          "require 'erb'; require 'json'; @db = JSON.parse(ARGV[1]); " +
          "print ERB.new(File.read(ARGV[0]), trim_mode: '-').result(binding)";
        const { stdout } = await execa("ruby", ["-e", script, join(cookbook, "templates", "dbconfig.xml.erb"), JSON.stringify(jira.db)]);
        assert.match(stdout, /^ {4}<connection-properties>tcpKeepAlive=true;socketTimeout=240<\/connection-properties>$/m, env);
        assert.match(stdout, /<url>jdbc:postgresql:\/\//);
      }
    });
  });
});
