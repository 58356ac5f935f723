import { strict as assert } from "node:assert";
import { join } from "node:path";
import { builderCidrProblem, builderCidrsProblems, checkBuilderCidrs, parseBuilderCidrs } from "../src/build-access.ts";
import { FAKE_PACKER, ROOT, readRecord, runCli, tempDir } from "./fixtures/fake-packer-harness.ts";

describe("builder SSH CIDRs: the rule (src/build-access.ts)", () => {
  it("accepts the builder's own address and narrow ranges, IPv4 up to /24 and IPv6 up to /64", () => {
    for (const ok of ["203.0.113.7/32", "198.51.100.0/24", "10.1.2.0/28", "2001:db8::1/128", "2001:db8:1:2::/64", "::ffff:203.0.113.7/128"]) {
      assert.equal(builderCidrProblem(ok), undefined, ok);
    }
  });

  it("refuses wide ranges, each entry on its own: two halves of the internet are refused", () => {
    assert.deepEqual(builderCidrsProblems(["0.0.0.0/1", "128.0.0.0/1"]), [
      '"0.0.0.0/1" opens SSH to 2^31 addresses; an IPv4 entry may be at most a /24',
      '"128.0.0.0/1" opens SSH to 2^31 addresses; an IPv4 entry may be at most a /24',
    ]);
    for (const wide of ["0.0.0.0/0", "10.0.0.0/23", "10.0.0.0/8", "::/0", "2001:db8::/63"]) {
      assert.match(builderCidrProblem(wide) ?? "", /opens SSH to 2\^\d+ addresses; an IPv[46] entry may be at most a \/(24|64)$/, wide);
    }
  });

  it("refuses what is not a CIDR block", () => {
    for (const bad of ["203.0.113.7", "203.0.113.7/33", "203.0.113.7/", "10.0.0.0/024", "256.0.0.1/32", "2001:db8::1/129", "example.com/32", " 203.0.113.7/32", ""]) {
      assert.match(builderCidrProblem(bad) ?? "", /is not a CIDR block/, JSON.stringify(bad));
    }
  });

  it("refuses an empty list: the build instance would be unreachable", () => {
    assert.deepEqual(builderCidrsProblems([]), ["an empty list: the build instance would be unreachable"]);
  });

  it("reads the environment variable as Packer reads a list(string): a JSON/HCL list, trailing comma allowed", () => {
    assert.deepEqual(parseBuilderCidrs('["203.0.113.7/32", "2001:db8::1/128",]'), ["203.0.113.7/32", "2001:db8::1/128"]);
    for (const bad of ["203.0.113.7/32", '"203.0.113.7/32"', "[1]", "{}", "['203.0.113.7/32']"]) assert.equal(parseBuilderCidrs(bad), undefined, bad);
  });

  it("names the setting and what is wrong, one sentence per problem", () => {
    assert.deepEqual(checkBuilderCidrs('["203.0.113.7/32"]'), []);
    assert.deepEqual(checkBuilderCidrs(undefined), [
      "PKR_VAR_ssh_source_cidrs: not set (Packer's temporary security group needs the builder's own address for SSH)",
    ]);
    assert.deepEqual(checkBuilderCidrs("  "), checkBuilderCidrs(undefined));
    assert.deepEqual(checkBuilderCidrs("203.0.113.7/32"), [
      'PKR_VAR_ssh_source_cidrs: not a list of CIDR strings such as ["203.0.113.7/32"]: 203.0.113.7/32',
    ]);
    assert.deepEqual(checkBuilderCidrs('["0.0.0.0/0","10.0.0.0/16"]', "--var ssh_source_cidrs"), [
      '--var ssh_source_cidrs: "0.0.0.0/0" opens SSH to 2^32 addresses; an IPv4 entry may be at most a /24',
      '--var ssh_source_cidrs: "10.0.0.0/16" opens SSH to 2^16 addresses; an IPv4 entry may be at most a /24',
    ]);
  });
});

describe("builder SSH CIDRs: the stage runner refuses them before Packer starts (real CLI, stand-in packer)", function () {
  this.timeout(30_000);
  const dir = tempDir("build-access-");
  const base = ["--stage", "base", "--template", "packer/base", "--var", "region=eu-west-1"];

  const run = (name: string, extraArgs: string[], cidrs: string | undefined) => {
    const record = join(dir, `${name}.record`);
    return runCli([...base, "--log-dir", join(dir, name), ...extraArgs], {
      cwd: ROOT,
      env: { PACKER_BIN: FAKE_PACKER, FAKE_PACKER_RECORD: record, PKR_VAR_ssh_source_cidrs: cidrs },
    }).then((result) => ({ ...result, packerCalls: readRecord(record) }));
  };

  it("refuses two halves of the internet with SSH_CIDRS_INVALID, exit 2, and never runs Packer", async () => {
    const result = await run("split", [], '["0.0.0.0/1","128.0.0.0/1"]');
    assert.equal(result.exitCode, 2, result.stderr);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^stage-runner: \[base\] SSH_CIDRS_INVALID: PKR_VAR_ssh_source_cidrs: "0\.0\.0\.0\/1" opens SSH to 2\^31 addresses/m);
    assert.match(result.stderr, /set your own address: export PKR_VAR_ssh_source_cidrs=/);
    assert.deepEqual(result.packerCalls, [], "no packer process ran");
  });

  it("refuses a missing setting the same way", async () => {
    const result = await run("unset", [], undefined);
    assert.equal(result.exitCode, 2, result.stderr);
    assert.match(result.stderr, /SSH_CIDRS_INVALID: PKR_VAR_ssh_source_cidrs: not set/);
    assert.deepEqual(result.packerCalls, []);
  });

  it("checks a --var ssh_source_cidrs instead of the environment, as Packer would use it", async () => {
    const wide = await run("var-wide", ["--var", 'ssh_source_cidrs=["10.0.0.0/8"]'], '["203.0.113.7/32"]');
    assert.match(wide.stderr, /SSH_CIDRS_INVALID: --var ssh_source_cidrs: "10\.0\.0\.0\/8" opens SSH/);
    const narrow = await run("var-narrow", ["--var", 'ssh_source_cidrs=["203.0.113.7/32"]'], '["0.0.0.0/0"]');
    assert.equal(narrow.exitCode, 0, narrow.stderr);
    assert.ok(narrow.packerCalls.some((e) => e.event === "start"), "the build ran");
  });
});
