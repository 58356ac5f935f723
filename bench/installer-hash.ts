/**
 * What a stage's installer hash costs per preview, `up` and `plan` (src/installer-hash.ts), on a
 * 1 GiB sparse file: read and hashed whole (cold, and what every run paid before), answered by the
 * stat-keyed cache (warm, as a new process sees it), and vouched for by git's index (committed
 * through a git-lfs-like clean filter that writes the pointer, so that no GiB is copied into
 * .git/lfs).
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, ftruncateSync, rmSync, utimesSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { contentSha256Sync } from "../src/lfs.ts";
import { clearInstallerHashMemo, installerHash, type HashSource } from "../src/installer-hash.ts";

const SIZE = 1024 ** 3;
const RUNS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function git(cwd: string, ...args: string[]): string {
  const result = spawnSync("git", args, { cwd, encoding: "utf8", env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: cwd } });
  if (result.status !== 0) throw new Error(`git ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

/** A 1 GiB file, sparse but for a few random-ish blocks, written a minute ago (not racy). */
function makeInstaller(path: string): void {
  const fd = openSync(path, "w");
  try {
    ftruncateSync(fd, SIZE);
    for (let at = 0; at < SIZE; at += 64 * 1024 * 1024) writeSync(fd, `block at ${at} of the bench installer\n`, at);
  } finally {
    closeSync(fd);
  }
  const past = new Date(Date.now() - 60_000);
  utimesSync(path, past, past);
}

/** Milliseconds of `hash()` (median of RUNS), checking every answer came the expected way. */
function measure(via: HashSource, runs: number, hash: () => { sha256: string; via: HashSource }, expected: string): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    clearInstallerHashMemo(); // each run as a new process would see it
    const start = performance.now();
    const result = hash();
    times.push(performance.now() - start);
    if (result.via !== via || result.sha256 !== expected) throw new Error(`expected ${via} ${expected}, got ${result.via} ${result.sha256}`);
  }
  return median(times);
}

export function benchInstallerHash(): Array<[string, string]> {
  const work = join(tmpdir(), `installer-hash-bench-${process.pid}`);
  const repo = join(work, "repo");
  mkdirSync(join(repo, "packer", "files"), { recursive: true });
  try {
    const installer = join(repo, "packer", "files", "atlassian-jira-software-9.12.15.tar.gz");
    makeInstaller(installer);
    const cacheFile = join(work, "cache.json");

    const before: number[] = [];
    let sha256 = "";
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      sha256 = contentSha256Sync(installer);
      before.push(performance.now() - start);
    }
    const cold = measure("read", 3, () => {
      rmSync(cacheFile, { force: true });
      return installerHash(repo, installer, { cacheFile, useGit: false });
    }, sha256);
    const warm = measure("cache", RUNS, () => installerHash(repo, installer, { cacheFile, useGit: false }), sha256);

    // The checkout: committed with a clean filter that turns the file into its git-lfs pointer.
    const pointer = join(work, "pointer");
    writeFileSync(pointer, `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${SIZE}\n`);
    git(repo, "init", "--quiet");
    git(repo, "config", "filter.lfs.clean", `cat >/dev/null; cat '${pointer}'`);
    git(repo, "config", "filter.lfs.required", "true");
    writeFileSync(join(repo, ".gitattributes"), "*.tar.gz filter=lfs -text\n");
    git(repo, "add", ".");
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "--quiet", "-m", "installer");
    const viaGit = measure("git-index", RUNS, () => installerHash(repo, installer, { cacheFile: join(work, "unused.json") }), sha256);

    const ms = (v: number) => `${v.toFixed(1)} ms`;
    return [
      ["installer (sparse file)", `${(SIZE / 1024 ** 3).toFixed(0)} GiB`],
      ["before: read + sha256, paid twice per run", `${ms(median(before))} each`],
      ["cold: read + sha256 + cache write", ms(cold)],
      ["warm: stat-keyed cache (new process)", `${ms(warm)}  (goal <= 50 ms)`],
      ["git index + staged lfs pointer (3 git calls)", `${ms(viaGit)}  (goal <= 50 ms)`],
    ];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
