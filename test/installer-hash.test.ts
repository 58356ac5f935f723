import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { contentSha256Sync } from "../src/lfs.ts";
import { clearInstallerHashMemo, installerHash, RACY_WINDOW_MS, type InstallerHashOptions } from "../src/installer-hash.ts";
import { stageInputs } from "../src/inputs-hash.ts";
import { installerPinProblem } from "../src/installer-checksums.ts";
import { PROJECT_ROOT } from "./helpers/pulumi-mocks.ts";
import { tempDir } from "./helpers/temp-dir.ts";

const sha = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

function requireTool(command: string, aptPackage: string): void {
  if (spawnSync("sh", ["-c", `command -v ${command}`]).status !== 0) {
    throw new Error(`${command} is not installed: apt-get install -y ${aptPackage}`);
  }
}

/** Counts full reads, so a test sees which answers came without reading the installer. */
function counting(): { reads: number; hashFile: (p: string) => string } {
  const counter = {
    reads: 0,
    hashFile: (p: string) => {
      counter.reads++;
      return contentSha256Sync(p);
    },
  };
  return counter;
}

/** Later than anything the test wrote by more than the racy window: what a next day's preview sees. */
const later = () => Date.now() + RACY_WINDOW_MS + 60_000;

/** Rewrites a file with other bytes of the same size and puts its old mtime back (ctime moves on: no call can set it). */
function editKeepingSizeAndMtime(path: string): Buffer {
  const before = statSync(path, { bigint: true });
  const reference = `${path}.mtime`;
  // touch -r copies the time stamps to the nanosecond (Node's utimes takes a float of seconds).
  assert.equal(spawnSync("touch", ["-r", path, reference]).status, 0);
  const bytes = randomBytes(Number(before.size));
  writeFileSync(path, bytes);
  assert.equal(spawnSync("touch", ["-r", reference, path]).status, 0);
  rmSync(reference);
  const after = statSync(path, { bigint: true });
  assert.equal(after.size, before.size);
  assert.equal(after.mtimeNs, before.mtimeNs);
  return bytes;
}

describe("installer hashing: git's index and a stat-keyed cache instead of reading the installer", function () {
  beforeEach(clearInstallerHashMemo);

  describe("the on-disk cache (no git repository)", function () {
    let root: string;
    let file: string;
    let options: InstallerHashOptions & { cacheFile: string };
    let counter: ReturnType<typeof counting>;

    beforeEach(function () {
      root = tempDir("installer-hash-");
      file = join(root, "installer.tar.gz");
      writeFileSync(file, randomBytes(256 * 1024));
      counter = counting();
      options = { cacheFile: join(root, "cache", "installer-sha256.json"), useGit: false, now: later, hashFile: counter.hashFile };
    });

    it("reads a file once, then answers from the cache by device, inode, size, mtime and ctime", function () {
      const first = installerHash(root, file, options);
      assert.deepEqual(first, { sha256: sha(readFileSync(file)), via: "read" });
      clearInstallerHashMemo(); // a new process: only the file cache is left
      assert.deepEqual(installerHash(root, file, options), { sha256: first.sha256, via: "cache" });
      assert.equal(counter.reads, 1);
      const doc = JSON.parse(readFileSync(options.cacheFile, "utf8"));
      assert.equal(doc.entries[file].sha256, first.sha256);
    });

    it("notices an edit that keeps the size and the mtime (the cache key holds the ctime)", function () {
      installerHash(root, file, options);
      clearInstallerHashMemo();
      const edited = editKeepingSizeAndMtime(file);
      assert.deepEqual(installerHash(root, file, options), { sha256: sha(edited), via: "read" });
      // The in-process memo is keyed alike: no new process needed to see the edit.
      const again = editKeepingSizeAndMtime(file);
      assert.deepEqual(installerHash(root, file, { ...options, now: () => Date.now() }), { sha256: sha(again), via: "read" });
    });

    it("does not remember a file changed within the racy window before hashing (same-second rewrites)", function () {
      const racy = { ...options, now: () => Date.now() };
      installerHash(root, file, racy);
      assert.equal(existsSync(options.cacheFile), false, "nothing cached for a file changed just now");
      assert.equal(installerHash(root, file, racy).via, "read");
      assert.equal(counter.reads, 2);
    });

    it("answers what the cache file says for the same stat key (the cache, not a re-read, is used)", function () {
      installerHash(root, file, options);
      clearInstallerHashMemo();
      const doc = JSON.parse(readFileSync(options.cacheFile, "utf8"));
      doc.entries[file].sha256 = "f".repeat(64);
      writeFileSync(options.cacheFile, JSON.stringify(doc));
      assert.equal(installerHash(root, file, options).sha256, "f".repeat(64));
    });

    it("ignores a cache file it cannot read and still hashes", function () {
      mkdirSync(join(root, "cache"));
      writeFileSync(options.cacheFile, "{not json");
      assert.equal(installerHash(root, file, options).sha256, sha(readFileSync(file)));
    });

    it("takes a git-lfs pointer's oid without any read of the real file", function () {
      const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${"a".repeat(64)}\nsize 123456789\n`;
      writeFileSync(file, pointer);
      assert.deepEqual(installerHash(root, file, options), { sha256: "a".repeat(64), via: "pointer" });
      assert.equal(counter.reads, 0);
    });
  });

  describe("git's index (a checkout with the installer committed through git-lfs)", function () {
    let repo: string;
    let installer: string;
    let content: Buffer;
    let counter: ReturnType<typeof counting>;
    let options: InstallerHashOptions;
    let gitEnv: NodeJS.ProcessEnv;
    const git = (...args: string[]) => execa("git", args, { cwd: repo, env: gitEnv });

    beforeEach(async function () {
      requireTool("git", "git");
      requireTool("git-lfs", "git-lfs");
      const scratch = tempDir("installer-hash-git-");
      const home = join(scratch, "home");
      mkdirSync(home);
      gitEnv = {
        ...process.env,
        HOME: home,
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_AUTHOR_NAME: "Test",
        GIT_AUTHOR_EMAIL: "test@example.invalid",
        GIT_COMMITTER_NAME: "Test",
        GIT_COMMITTER_EMAIL: "test@example.invalid",
      };
      await execa("git", ["lfs", "install"], { cwd: home, env: gitEnv });
      repo = join(scratch, "repo");
      mkdirSync(join(repo, "packer", "files"), { recursive: true });
      await git("init", "--quiet", "--initial-branch=main");
      copyFileSync(join(PROJECT_ROOT, ".gitattributes"), join(repo, ".gitattributes"));
      installer = join(repo, "packer", "files", "atlassian-jira-software-9.12.15.tar.gz");
      content = randomBytes(512 * 1024);
      writeFileSync(installer, content);
      // Written a while ago, as a pulled installer is: the index entry is then older than the index.
      const past = new Date(Date.now() - 60_000);
      utimesSync(installer, past, past);
      await git("add", ".gitattributes", "packer/files");
      await git("commit", "--quiet", "-m", "installer");
      counter = counting();
      options = { cacheFile: join(scratch, "cache.json"), hashFile: counter.hashFile, now: later };
    });

    it("takes the oid of the staged git-lfs pointer when the file is unmodified, without reading it", function () {
      assert.deepEqual(installerHash(repo, installer, options), { sha256: sha(content), via: "git-index" });
      assert.equal(counter.reads, 0);
    });

    it("hashes an edited, uncommitted installer (same size, same mtime) instead of trusting the index", function () {
      const edited = editKeepingSizeAndMtime(installer);
      assert.deepEqual(installerHash(repo, installer, options), { sha256: sha(edited), via: "read" });
      assert.equal(counter.reads, 1);
    });

    it("does not trust a racily clean entry (its mtime not older than the index file's)", function () {
      const index = join(repo, ".git", "index");
      const entryMtime = statSync(installer).mtime;
      utimesSync(index, entryMtime, entryMtime);
      assert.deepEqual(installerHash(repo, installer, options), { sha256: sha(content), via: "read" });
    });

    it("hashes a committed installer that is not a git-lfs pointer in the index (no .gitattributes rule)", async function () {
      const plain = join(repo, "packer", "files", "plain.dat");
      writeFileSync(plain, content);
      const past = new Date(Date.now() - 60_000);
      utimesSync(plain, past, past);
      await git("add", "packer/files/plain.dat");
      await git("commit", "--quiet", "-m", "plain");
      assert.deepEqual(installerHash(repo, plain, options), { sha256: sha(content), via: "read" });
    });

    it("gives the preflight's pin check and the installers trigger the same value as hashing the bytes", function () {
      const rel = "packer/files/atlassian-jira-software-9.12.15.tar.gz";
      const pins = new Map([["atlassian-jira-software-9.12.15.tar.gz", sha(content)]]);
      assert.equal(installerPinProblem(repo, rel, pins), undefined);
      const stage = { name: "jira", template: "packer/jira", workspace: [], installers: [rel], scanInputs: [], varFiles: [], vars: {} };
      const viaIndex = stageInputs(stage, repo).hashes.installers;
      clearInstallerHashMemo();
      editKeepingSizeAndMtime(installer);
      writeFileSync(installer, content); // the same bytes again, now unknown to the index: read and hashed
      assert.equal(stageInputs(stage, repo).hashes.installers, viaIndex);
    });
  });
});
