import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { execa } from "execa";
import { IMAGE_TESTS_DIR, parseImageTestsLine, stageCheckNames, suiteChecks } from "../src/image-tests.ts";
import { JiraImagesError } from "../src/errors.ts";
import { prepareImageRoot } from "./helpers/image-root.ts";
import { PROJECT_ROOT } from "./helpers/pulumi-mocks.ts";
import { tempDir } from "./helpers/temp-dir.ts";

// The image tests (packer/common/image-tests) run locally against prepared root folders, laid out
// as a prod build instance is when its last provisioner runs: Amazon Linux 2023's files after the
// real os-base.sh, what the jira cookbook writes for the prod node (the unit, setenv.sh, dbconfig
// and db-secret.env rendered from the cookbook, Jira 9.12's own server.xml, the start-up helpers),
// then the real image-cleanup.sh. sshd is the smoke run's stand-in (the real one needs its
// privilege-separation user), which refuses to run without a host key as sshd does.
const TESTS = join(PROJECT_ROOT, IMAGE_TESTS_DIR);
const RUNNER = join(TESTS, "run.sh");
const STAND_INS = join(PROJECT_ROOT, "test", "fixtures", "packer-smoke", "bin");
const SCRIPTS = join(PROJECT_ROOT, "packer", "common", "scripts");
const CHEF = join(PROJECT_ROOT, "packer", "chef");
const COOKBOOK = join(CHEF, "cookbooks", "jira");
const FIXTURES = join(PROJECT_ROOT, "test", "fixtures", "chef");
const VERSION = "9.12.15";
const JIRA = `/opt/atlassian/jira/${VERSION}`;
const HOME = "/var/atlassian/application-data/jira";
const SUITES = ["base", "jira", "custom"];
const STAGE = "custom-prod";

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

interface Prod {
  unit: string;
  setenv: string;
  dbconfig: string;
  startEnv: string;
  dbSecret: string;
  /** The suites' inputs as the custom template passes them for prod. */
  env: Record<string, string>;
}
let prod: Prod;
let expected: number;

function runScript(script: string, root: string) {
  return execa("bash", [script], {
    env: { PATH: `${STAND_INS}:/usr/bin:/bin`, TARGET_ROOT: root, SMOKE_SCRATCH: root },
    extendEnv: false,
  });
}

/** A root that passes every check: a prod build instance when its last provisioner runs. */
async function imageRoot(): Promise<string> {
  const root = tempDir("image-tests-");
  prepareImageRoot(root);
  await runScript(join(PROJECT_ROOT, "packer", "base", "scripts", "os-base.sh"), root);
  put(root, `${JIRA}/bin/start-jira.sh`, "#!/bin/sh\n", 0o755);
  put(root, `${JIRA}/bin/setenv.sh`, prod.setenv);
  put(root, `${JIRA}/conf/server.xml`, readFileSync(join(FIXTURES, "jira-9.12-server.xml"), "utf8"));
  for (const dir of ["logs", "temp", "work"]) mkdirSync(join(root, JIRA, dir));
  symlinkSync(JIRA, join(root, "opt", "atlassian", "jira", "current"));
  put(root, "/etc/systemd/system/jira.service", prod.unit);
  symlinkSync("/etc/systemd/system/jira.service", join(root, "etc", "systemd", "system", "multi-user.target.wants", "jira.service"));
  put(root, "/etc/jira-images/start.env", prod.startEnv);
  put(root, "/etc/jira-images/dbconfig.xml.tmpl", prod.dbconfig, 0o640);
  put(root, "/etc/jira-images/db-secret.env", prod.dbSecret);
  chmodSync(join(root, "etc", "jira-images"), 0o750);
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
  put(root, "/etc/passwd", `root:x:0:0:root:/root:/bin/bash\nec2-user:x:1000:1000::/home/ec2-user:/bin/bash\njira:x:${uid}:${uid}::${HOME}:/sbin/nologin\n`);
  mkdirSync(join(root, HOME), { recursive: true });
  mkdirSync(join(root, "var", "tmp"), { recursive: true });
  await runScript(join(SCRIPTS, "image-cleanup.sh"), root);
  return root;
}

function runTests(root: string, options: { suites?: string[]; expect?: number; env?: Record<string, string>; runner?: string } = {}) {
  const suites = options.suites ?? SUITES;
  return execa("bash", [options.runner ?? RUNNER, "--root", root, "--stage", STAGE, "--expect", String(options.expect ?? expected), ...suites], {
    env: { PATH: `${STAND_INS}:/usr/bin:/bin`, SMOKE_SCRATCH: root, ...prod.env, ...options.env },
    extendEnv: false,
    reject: false,
  });
}

/** The failed checks' names, from the FAILED lines. */
function failedChecks(stderr: string): string[] {
  return [...new Set([...stderr.matchAll(/^image-tests: FAILED ([^:]+):/gm)].map((m) => m[1]!))];
}

describe("image tests (packer/common/image-tests) on prepared root folders", function () {
  this.timeout(60_000);

  before(async function () {
    requireTool("ruby", "ruby");
    requireTool("python3", "python3");
    requireTool("ssh-keygen", "openssh-client");
    const { jira } = JSON.parse(await render("prod", "attributes"));
    prod = {
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
      dbSecret: await renderErb("db-secret.env.erb", { store: jira.db.password_store, name: jira.db.password_name, home: jira.home, user: jira.user, group: jira.group }),
      env: {
        SSH_USERNAME: "ec2-user",
        JIRA_VERSION: VERSION,
        JVM_MINIMUM_MEMORY: jira.jvm.minimum_memory,
        JVM_MAXIMUM_MEMORY: jira.jvm.maximum_memory,
        NODE_DB_HOST: jira.db.host,
        NODE_DB_NAME: jira.db.name,
        NODE_DB_USERNAME: jira.db.username,
        NODE_DB_PASSWORD_STORE: jira.db.password_store,
        NODE_DB_PASSWORD_NAME: jira.db.password_name,
      },
    };
    expected = stageCheckNames(STAGE, SUITES, PROJECT_ROOT).length;
  });

  it("passes on what os-base.sh, the cookbook for prod and image-cleanup.sh leave, printing each check and the result line", async function () {
    const root = await imageRoot();
    const result = await runTests(root);
    assert.equal(result.exitCode, 0, result.stderr);
    assert.equal(result.stderr, "");
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(lines.filter((l) => l.startsWith("image-tests: ok: ")).length, expected);
    assert.equal(lines.at(-1), `image-tests: stage=${STAGE} passed=${expected} failed=0`);
    assert.deepEqual(parseImageTestsLine(lines.at(-1)!), { stage: STAGE, passed: expected, failed: 0 });
    assert.match(result.stdout, /ok: sshd hardening in force: sshd -T shows every hardened value in force/);
    assert.match(result.stdout, /ok: jvm heap: bin\/setenv\.sh starts Jira with the role's heap 4096m\/8192m/);
    assert.match(result.stdout, /ok: node settings: jira_prod@jira-db\.prod\.internal\/jira_prod, password from secretsmanager:jira-images\/prod\/jira\/db-password/);
    // sshd -T was asked with a throwaway host key (image-cleanup.sh removed the image's), against the root's config.
    assert.match(readFileSync(join(root, "calls.log"), "utf8"), new RegExp(`^sshd -T -h \\S+/host_key -f ${root}/etc/ssh/sshd_config$`, "m"));
  });

  it("runs the suites a stage names: the base stage's alone, the jira stage's base and jira", async function () {
    const root = await imageRoot();
    for (const suites of [["base"], ["base", "jira"]]) {
      const count = stageCheckNames("jira", suites, PROJECT_ROOT).length;
      const result = await runTests(root, { suites, expect: count });
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`image-tests: stage=${STAGE} passed=${count} failed=0$`));
    }
  });

  const breaks: Array<{ check: string; found: RegExp; breakIt: (root: string) => void; env?: Record<string, string> }> = [
    {
      check: "ssm agent enabled",
      found: /no \/etc\/systemd\/system\/multi-user\.target\.wants\/amazon-ssm-agent\.service link/,
      breakIt: (root) => rmSync(join(root, "etc", "systemd", "system", "multi-user.target.wants", "amazon-ssm-agent.service")),
    },
    {
      check: "sshd hardening in force",
      found: /not in force: passwordauthentication no \(sshd -T: passwordauthentication yes\)$/,
      // A drop-in read before ours (cloud-init or a package could add one) wins in sshd.
      breakIt: (root) => writeFileSync(join(root, "etc", "ssh", "sshd_config.d", "00-early.conf"), "PasswordAuthentication yes\n"),
    },
    {
      check: "sshd hardening in force",
      found: /sshd would not start with this configuration: .*Bad configuration option: passwordauthenticaton/,
      breakIt: (root) => writeFileSync(join(root, "etc", "ssh", "sshd_config.d", "10-typo.conf"), "PasswordAuthenticaton no\n"),
    },
    {
      check: "no build user keys",
      found: /keys still authorised in \/home\/ec2-user\/\.ssh\/authorized_keys /,
      breakIt: (root) => writeFileSync(join(root, "home", "ec2-user", ".ssh", "authorized_keys"), "ssh-ed25519 AAAA packer-temporary-key\n"),
    },
    {
      check: "no ssh host keys",
      found: /host keys left on the image: \/etc\/ssh\/ssh_host_ed25519_key/,
      breakIt: (root) => writeFileSync(join(root, "etc", "ssh", "ssh_host_ed25519_key"), "the build instance's key\n"),
    },
    {
      check: "start settings",
      found: /start\.env lacks JIRA_HTTP_PORT, JIRA_HOME or JIRA_USER \(found: port '', home/,
      breakIt: (root) => put(root, "/etc/jira-images/start.env", prod.startEnv.replace(/^JIRA_HTTP_PORT=.*\n/m, "")),
    },
    {
      check: "jira version",
      found: /current points to '\/opt\/atlassian\/jira\/9\.4\.0', not \/opt\/atlassian\/jira\/9\.12\.15/,
      breakIt: (root) => {
        rmSync(join(root, "opt", "atlassian", "jira", "current"));
        symlinkSync("/opt/atlassian/jira/9.4.0", join(root, "opt", "atlassian", "jira", "current"));
      },
    },
    {
      check: "jvm heap",
      found: /JVM_MAXIMUM_MEMORY="\$\{JVM_MAXIMUM_MEMORY:-2048m\}".*found: JVM_MAXIMUM_MEMORY="\$\{JVM_MAXIMUM_MEMORY:-8192m\}"/,
      breakIt: () => undefined,
      env: { JVM_MAXIMUM_MEMORY: "2048m" },
    },
    {
      check: "jira service enabled",
      found: /no \/etc\/systemd\/system\/multi-user\.target\.wants\/jira\.service link/,
      breakIt: (root) => rmSync(join(root, "etc", "systemd", "system", "multi-user.target.wants", "jira.service")),
    },
    {
      check: "jira unit order",
      found: /Wants= lacks cloud-final\.service, found: network-online\.target/,
      breakIt: (root) => put(root, "/etc/systemd/system/jira.service", prod.unit.replace(/^Wants=.*$/m, "Wants=network-online.target")),
    },
    {
      check: "jira unit restart",
      found: /Restart= should be on-failure, found: 'no'/,
      breakIt: (root) => put(root, "/etc/systemd/system/jira.service", prod.unit.replace(/^Restart=.*$/m, "Restart=no")),
    },
    {
      check: "start-up helpers",
      found: /\/opt\/jira-images\/bin\/jira-proxy \(ExecStartPre of jira\.service\) is missing or not executable/,
      breakIt: (root) => chmodSync(join(root, "opt", "jira-images", "bin", "jira-proxy"), 0o644),
    },
    {
      check: "dbconfig connection properties",
      found: /found: 'tcpKeepAlive=true'/,
      breakIt: (root) => put(root, "/etc/jira-images/dbconfig.xml.tmpl", prod.dbconfig.replace(/;?socketTimeout=\d+/, "")),
    },
    {
      check: "server.xml connector",
      found: /expected one <Connector port="8080"> outside comments, found 2/,
      breakIt: (root) => {
        const serverXml = join(root, JIRA, "conf", "server.xml");
        writeFileSync(serverXml, readFileSync(serverXml, "utf8").replace("</Service>", '<Connector port="8080" protocol="HTTP/1.1"/>\n</Service>'));
      },
    },
    {
      check: "java",
      found: /\/usr\/lib\/jvm\/java-17-amazon-corretto\/bin\/java \(JAVA_HOME of jira\.service\) is missing/,
      breakIt: (root) => rmSync(join(root, "usr", "lib", "jvm"), { recursive: true }),
    },
    {
      check: "file ownership",
      found: new RegExp(`not owned by jira \\(uid ${process.getuid!() + 1}\\): ${HOME} \\(uid '${process.getuid!()}'\\)`),
      breakIt: (root) => put(root, "/etc/passwd", `jira:x:${process.getuid!() + 1}:1::${HOME}:/sbin/nologin\n`),
    },
    {
      check: "no chef workspace",
      found: /still on the image: \/var\/tmp\/jira-images \/var\/tmp\/jira-images\/files\/atlassian-jira-software-9\.12\.15\.tar\.gz$/,
      breakIt: (root) => put(root, "/var/tmp/jira-images/files/atlassian-jira-software-9.12.15.tar.gz", "installer"),
    },
    {
      check: "no chef workspace",
      found: /still on the image: \/etc\/cinc$/,
      breakIt: (root) => mkdirSync(join(root, "etc", "cinc")),
    },
    {
      check: "no package caches",
      found: /package caches left in \/var\/cache\/dnf or \/var\/cache\/yum: amzn2023-baseos/,
      breakIt: (root) => mkdirSync(join(root, "var", "cache", "dnf", "amzn2023-baseos"), { recursive: true }),
    },
    {
      check: "no secrets on disk",
      found: new RegExp(`secrets on the image: ${HOME}/dbconfig\\.xml$`),
      breakIt: (root) => put(root, `${HOME}/dbconfig.xml`, "<password>s3cret</password>\n", 0o600),
    },
    {
      check: "no secrets on disk",
      found: /secrets on the image: \/root\/\.aws\/credentials$/,
      breakIt: (root) => put(root, "/root/.aws/credentials", "[default]\n", 0o600),
    },
    {
      check: "node settings",
      found: /should connect to database jira_prod on jira-db\.prod\.internal, found url 'jdbc:postgresql:\/\/jira-db\.dev\.internal:5432\/jira_prod'/,
      breakIt: (root) => put(root, "/etc/jira-images/dbconfig.xml.tmpl", prod.dbconfig.replace("jira-db.prod.internal", "jira-db.dev.internal"), 0o640),
    },
    {
      check: "node settings",
      found: /db-secret\.env should name secretsmanager:jira-images\/prod\/jira\/db-password, found 'ssm:jira-images\/prod\/jira\/db-password'/,
      breakIt: (root) => put(root, "/etc/jira-images/db-secret.env", prod.dbSecret.replace("=secretsmanager", "=ssm")),
    },
    {
      check: "launch environment path",
      found: /\/etc\/jira-images\/launch\.env is baked into the image; only user data writes it/,
      breakIt: (root) => put(root, "/etc/jira-images/launch.env", "JIRA_BASE_URL=https://jira.example.com\n"),
    },
    {
      check: "database password helper",
      found: /jira\.service does not run \/opt\/jira-images\/bin\/jira-db-secret before each start/,
      breakIt: (root) => put(root, "/etc/systemd/system/jira.service", prod.unit.replace(/^ExecStartPre=\+\/opt\/jira-images\/bin\/jira-db-secret\n/m, "")),
    },
  ];

  for (const { check, found, breakIt, env } of breaks) {
    it(`fails "${check}" alone on a root that breaks it (${found.source.slice(0, 60)}…)`, async function () {
      const root = await imageRoot();
      breakIt(root);
      const result = await runTests(root, env ? { env } : {});
      assert.equal(result.exitCode, 1, result.stdout + result.stderr);
      assert.deepEqual(failedChecks(result.stderr), [check], result.stderr);
      const failed = result.stderr.split("\n").filter((l) => l.startsWith(`image-tests: FAILED ${check}: `));
      assert.ok(failed.some((l) => found.test(l)), `no FAILED line matches ${found}:\n${result.stderr}`);
      assert.match(result.stderr, new RegExp(`^image-tests: error: 1 of ${expected} checks failed \\(${check.replace(".", "\\.")}\\); the image is not made$`, "m"));
      assert.equal(result.stdout.trimEnd().split("\n").at(-1), `image-tests: stage=${STAGE} passed=${expected - 1} failed=1`);
    });
  }

  it("breaks every check of the suites in the cases above", function () {
    const names = stageCheckNames(STAGE, SUITES, PROJECT_ROOT).map((n) => n.slice(n.indexOf(": ") + 2));
    assert.deepEqual([...new Set(breaks.map((b) => b.check))].sort(), [...names].sort());
  });

  it("reports every check on an empty root instead of stopping at the first", async function () {
    const result = await runTests(tempDir("image-tests-empty-"));
    assert.equal(result.exitCode, 1);
    // Nothing to find means nothing left behind: the leftover checks pass, every other one fails.
    const passing = ["no build user keys", "no ssh host keys", "no chef workspace", "no package caches", "no secrets on disk"];
    assert.equal(failedChecks(result.stderr).length, expected - passing.length, result.stderr);
    assert.match(result.stdout, new RegExp(`image-tests: stage=${STAGE} passed=${passing.length} failed=${expected - passing.length}$`));
  });

  it("fails a run of another number of checks than the stage expects, passing or not", async function () {
    const result = await runTests(await imageRoot(), { expect: expected + 1 });
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, new RegExp(`image-tests: error: ${expected} checks ran, but the stage expects ${expected + 1} \\(image_tests_count`));
    assert.match(result.stdout, new RegExp(`image-tests: stage=${STAGE} passed=${expected} failed=0$`));
  });

  it("refuses to run without a suite's inputs, an unknown suite or a count, printing no result line", async function () {
    const root = await imageRoot();
    const cases: Array<[Parameters<typeof runTests>[1], RegExp]> = [
      [{ env: { JIRA_VERSION: "" } }, /image-tests: error: suite needs JIRA_VERSION in the environment/],
      [{ suites: ["base", "nightly"] }, /image-tests: error: no suite 'nightly'/],
      [{ expect: 0 }, /image-tests: error: --expect must be the number of checks the suites hold, not '0'/],
    ];
    for (const [options, message] of cases) {
      const result = await runTests(root, options);
      assert.equal(result.exitCode, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stdout, /image-tests: stage=/);
    }
  });

  it("fails a check that stops on an error of its own, and still runs the others", async function () {
    const copy = join(tempDir("image-tests-copy-"), "image-tests");
    cpSync(TESTS, copy, { recursive: true });
    writeFileSync(join(copy, "broken.sh"), '#!/bin/bash\nbroken() { echo "${NOT_SET_ANYWHERE}"; }\ncheck "broken" broken\n');
    const result = await runTests(await imageRoot(), { runner: join(copy, "run.sh"), suites: ["broken", "base"], expect: 5 });
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /^image-tests: FAILED broken: the check itself stopped with status 1$/m);
    assert.match(result.stdout, /image-tests: stage=custom-prod passed=4 failed=1$/);
  });

  it("keeps every image test script shellcheck-clean, in bash strict mode", async function () {
    requireTool("shellcheck", "shellcheck");
    const scripts = readdirSync(TESTS).filter((f) => f.endsWith(".sh")).map((f) => join(TESTS, f));
    assert.deepEqual(scripts.map((s) => s.slice(TESTS.length + 1)).sort(), ["base.sh", "custom.sh", "jira.sh", "run.sh"]);
    const result = await execa("shellcheck", ["--shell=bash", "--severity=style", ...scripts], { reject: false });
    assert.equal(result.exitCode, 0, result.stdout + result.stderr);
    for (const script of scripts) assert.match(readFileSync(script, "utf8"), /^#!\/bin\/bash\n(#.*\n)*set -euo pipefail$/m, script);
  });
});

describe("image tests: counting a stage's checks (src/image-tests.ts)", () => {
  it("counts the check lines of the stage's suites, in run order", () => {
    const base = stageCheckNames("base", ["base"], PROJECT_ROOT);
    assert.deepEqual(base, ["base: ssm agent enabled", "base: sshd hardening in force", "base: no build user keys", "base: no ssh host keys"]);
    const all = stageCheckNames("custom-dev", SUITES, PROJECT_ROOT);
    assert.deepEqual(all.slice(0, 4), base);
    assert.equal(all.at(-1), "custom: database password helper");
    assert.equal(all.length, 21);
  });

  it("refuses a check line the runner would run but the count would miss, and a name used twice", () => {
    assert.throws(() => suiteChecks("x.sh", 'check "a" one\n  check "b" two\n'), (e: unknown) => e instanceof JiraImagesError && e.code === "IMAGE_TESTS_INVALID" && /x\.sh:2: a check must be declared on one line/.test(e.message));
    assert.throws(() => suiteChecks("x.sh", 'check "a" one\ncheck "a" two\n'), /IMAGE_TESTS_INVALID: x\.sh:2: check "a" is declared twice/);
    assert.deepEqual(suiteChecks("x.sh", '# check "not" this\nchecked=1\ncheck "a" one\n'), ["a"]);
  });

  it("refuses a suite with no file or no check, naming the stage", () => {
    assert.throws(() => stageCheckNames("jira", ["base", "nightly"], PROJECT_ROOT), /IMAGE_TESTS_INVALID: stage jira: image test suite nightly has no file packer\/common\/image-tests\/nightly\.sh/);
    const root = tempDir("image-tests-empty-suite-");
    put(root, `${IMAGE_TESTS_DIR}/empty.sh`, "#!/bin/bash\n");
    assert.throws(() => stageCheckNames("base", ["empty"], root), /IMAGE_TESTS_INVALID: stage base: packer\/common\/image-tests\/empty\.sh declares no check/);
  });

  it("reads the result line as Packer prints it, and nothing else", () => {
    assert.deepEqual(parseImageTestsLine("    amazon-ebs.jira: image-tests: stage=jira passed=18 failed=0"), { stage: "jira", passed: 18, failed: 0 });
    assert.deepEqual(parseImageTestsLine("image-tests: stage=custom-dev passed=20 failed=1\r"), { stage: "custom-dev", passed: 20, failed: 1 });
    assert.equal(parseImageTestsLine("    amazon-ebs.jira: image-tests: ok: java: java at /usr/lib/jvm"), undefined);
    assert.equal(parseImageTestsLine("echo image-tests: stage=jira passed=18 failed=0 # not at the end"), undefined);
  });
});

describe("image tests: what the stage templates hand the suites", function () {
  this.timeout(60_000);
  const STAGES = { base: ["base"], jira: ["base", "jira"], custom: ["base", "jira", "custom"] } as const;

  /** The variables a suite says it needs (`requires A B ...`). */
  const required = (suite: string) =>
    readFileSync(join(TESTS, `${suite}.sh`), "utf8")
      .split("\n")
      .filter((l) => l.startsWith("requires "))
      .flatMap((l) => l.split(/\s+/).slice(1));

  it("passes every input the stage's suites require in the tests provisioner's environment", () => {
    const common = readFileSync(join(PROJECT_ROOT, "packer", "common", "image-tests.pkr.hcl"), "utf8");
    const commonEnv = common.slice(common.indexOf("image_tests_env"));
    for (const [stage, suites] of Object.entries(STAGES)) {
      const text = readFileSync(join(PROJECT_ROOT, "packer", stage, `${stage}.pkr.hcl`), "utf8");
      const block = text.slice(text.search(/inline\s+= local\.image_tests_inline/));
      assert.match(block, /^\s*inline\s+= local\.image_tests_inline\n\s*environment_vars = (local\.image_tests_env|concat\(local\.image_tests_env, \[)/, stage);
      const env = block.slice(0, block.indexOf("execute_command"));
      for (const name of suites.flatMap(required)) {
        assert.ok(env.includes(`"${name}=`) || commonEnv.includes(`"${name}=`), `packer/${stage}: the tests lack ${name}`);
      }
    }
  });

  it("expects what Chef writes: the cookbook's heap in jira, each environment's node and role in custom (packer inspect)", async function () {
    requireTool("packer", "packer");
    requireTool("ruby", "ruby");
    const local = (stdout: string, name: string): Record<string, string> => {
      const line = stdout.split("\n").find((l) => l.startsWith(`local.${name}: `));
      assert.ok(line, `packer inspect shows no local.${name}:\n${stdout}`);
      return Object.fromEntries([...JSON.parse(line.slice(`local.${name}: `.length)).matchAll(/"(\w+)" = "([^"]*)"/g)].map((m: string[]) => [m[1], m[2]]));
    };
    const base = JSON.parse(await render("role:jira-base", "attributes")).jira.jvm;
    const jira = await execa("packer", ["inspect", "packer/jira"], { cwd: PROJECT_ROOT });
    assert.deepEqual(local(jira.stdout, "jvm"), base);
    for (const env of ["dev", "prod"]) {
      const custom = await execa("packer", ["inspect", "-var", "source_ami=ami-0123456789abcdef0", "-var-file", `packer/custom/${env}.pkrvars.hcl`, "packer/custom"], { cwd: PROJECT_ROOT });
      const { jvm, db } = JSON.parse(await render(env, "attributes")).jira;
      assert.deepEqual(local(custom.stdout, "jvm"), jvm, `custom-${env}`);
      const { host, name, username, password_store, password_name } = db;
      assert.deepEqual(local(custom.stdout, "node_db"), { host, name, username, password_store, password_name }, `custom-${env}`);
    }
  });
});
