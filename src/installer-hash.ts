import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync, type BigIntStats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { contentSha256Sync, parseLfsPointer, readLfsPointerSync, LFS_POINTER_MAX_BYTES } from "./lfs.ts";

/**
 * An installer's SHA-256 without reading a gigabyte on every preview, `up` and `plan`, by what is
 * already known about it, cheapest first:
 *
 * 1. `pointer`: the file is a git-lfs pointer (not pulled): its oid.
 * 2. `git-index`: git's index says the file is unmodified (its stat data — mtime, ctime, inode,
 *    size — match the index entry, and the entry is not "racily clean", i.e. its mtime is older than
 *    the index file's) and the staged blob is a git-lfs pointer: that pointer's oid is the SHA-256 of
 *    exactly these bytes (git-lfs's clean filter made it from them).
 * 3. `cache`: an earlier hash of this path with the same device, inode, size, mtime and ctime,
 *    from the on-disk cache `node_modules/.cache/jira-images/installer-sha256.json`.
 * 4. `read`: hashes the bytes, and remembers the result (in the process and on disk) unless the
 *    file changed less than RACY_WINDOW_MS before hashing began: a file system with coarse time
 *    stamps could then change it again with the same size and the same mtime.
 *
 * Any write to the file changes its ctime (which no user call can set back), so an edited,
 * uncommitted installer is always hashed again, also when its size and mtime are kept.
 */
export type HashSource = "pointer" | "git-index" | "cache" | "read";

export interface InstallerHash {
  sha256: string;
  via: HashSource;
}

export interface InstallerHashOptions {
  /** Where the on-disk cache lives (default: `<projectRoot>/node_modules/.cache/jira-images/installer-sha256.json`). */
  cacheFile?: string;
  /** Ask git's index (default true). */
  useGit?: boolean;
  /** Wall clock in ms (tests move it to decide what is racy). */
  now?: () => number;
  /** Hashes the whole file (tests count the calls). */
  hashFile?: (absPath: string) => string;
}

/**
 * How long after its last change a file's hash is not remembered: mtime granularity is 1 s on some
 * file systems (2 s on FAT), and within it a same-size rewrite can leave mtime and ctime unchanged.
 */
export const RACY_WINDOW_MS = 2000;

const CACHE_VERSION = 1;
/** Entries kept in the on-disk cache (one per installer path; old paths drop out first). */
const CACHE_MAX_ENTRIES = 64;

export function defaultCacheFile(projectRoot: string): string {
  return join(projectRoot, "node_modules", ".cache", "jira-images", "installer-sha256.json");
}

/** What identifies one version of a file's bytes without reading them. */
function statKey(st: BigIntStats): string {
  return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].join(":");
}

/** When the file last changed (content or metadata), in ms. */
function lastChangeMs(st: BigIntStats): number {
  return Number((st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs) / 1_000_000n);
}

/** In-process results: the preflight's pin check and the `installers` trigger ask for the same file. */
const memo = new Map<string, string>();

interface CacheEntry {
  key: string;
  sha256: string;
}

interface CacheDoc {
  version: number;
  entries: Record<string, CacheEntry>;
}

function readCache(file: string): CacheDoc {
  try {
    const doc = JSON.parse(readFileSync(file, "utf8")) as Partial<CacheDoc>;
    if (doc.version === CACHE_VERSION && doc.entries && typeof doc.entries === "object") return doc as CacheDoc;
  } catch {
    // Missing or unreadable: an empty cache (it is only ever an optimisation).
  }
  return { version: CACHE_VERSION, entries: {} };
}

function writeCache(file: string, path: string, entry: CacheEntry): void {
  const doc = readCache(file);
  delete doc.entries[path];
  doc.entries[path] = entry;
  const paths = Object.keys(doc.entries);
  for (const old of paths.slice(0, Math.max(0, paths.length - CACHE_MAX_ENTRIES))) delete doc.entries[old];
  try {
    mkdirSync(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(doc)}\n`);
    renameSync(tmp, file); // atomic: parallel runs never read half a file
  } catch {
    // A read-only checkout still works, only without the cache.
  }
}

function git(cwd: string, args: string[], maxBuffer = 64 * 1024): string | undefined {
  const result = spawnSync("git", ["-C", cwd, ...args], { encoding: "utf8", maxBuffer, stdio: ["ignore", "pipe", "ignore"] });
  return result.status === 0 && result.error === undefined ? result.stdout : undefined;
}

interface IndexEntry {
  mode: string;
  ctime: [bigint, bigint];
  mtime: [bigint, bigint];
  ino: bigint;
  size: bigint;
}

/** One entry of `git ls-files -s --debug` (mode, blob, stage and path, then the cached stat data). */
export function parseIndexDebug(text: string): IndexEntry | undefined {
  const mode = /^(\d{6}) [0-9a-f]{40,64} 0\t/.exec(text)?.[1];
  const time = (name: string) => {
    const m = new RegExp(`^\\s*${name}: (\\d+):(\\d+)$`, "m").exec(text);
    return m ? ([BigInt(m[1]!), BigInt(m[2]!)] as [bigint, bigint]) : undefined;
  };
  const ino = /\bino: (\d+)/.exec(text)?.[1];
  const size = /\bsize: (\d+)/.exec(text)?.[1];
  const ctime = time("ctime");
  const mtime = time("mtime");
  if (mode === undefined || ino === undefined || size === undefined || !ctime || !mtime) return undefined;
  return { mode, ctime, mtime, ino: BigInt(ino), size: BigInt(size) };
}

const NS = 1_000_000_000n;

/**
 * Whether git's index entry describes the file as it is now: same stat data (git keeps the size
 * modulo 2^32), and not racily clean (an entry whose mtime is not older than the index file's may
 * have been rewritten within the same time stamp after it was staged; git itself re-reads those).
 */
export function indexEntryMatches(entry: IndexEntry, st: BigIntStats, indexMtimeNs: bigint): boolean {
  const ns = ([s, n]: [bigint, bigint]) => s * NS + n;
  return (
    /^100(644|755)$/.test(entry.mode) &&
    ns(entry.mtime) === st.mtimeNs &&
    ns(entry.ctime) === st.ctimeNs &&
    entry.ino === st.ino &&
    entry.size === st.size % 2n ** 32n &&
    ns(entry.mtime) < indexMtimeNs - (indexMtimeNs % NS)
  );
}

/** The oid of the staged git-lfs pointer when git's index vouches for the working file, else undefined. */
function gitIndexOid(absPath: string, st: BigIntStats): string | undefined {
  const dir = dirname(absPath);
  const name = basename(absPath);
  const indexPath = git(dir, ["rev-parse", "--git-path", "index"])?.trim();
  if (!indexPath) return undefined;
  const indexStat = statSync(resolve(dir, indexPath), { bigint: true, throwIfNoEntry: false });
  const debug = git(dir, ["ls-files", "--stage", "--debug", "--", name]);
  const entry = debug === undefined ? undefined : parseIndexDebug(debug);
  if (!indexStat || !entry || !indexEntryMatches(entry, st, indexStat.mtimeNs)) return undefined;
  // A pointer is under 1 KiB; a blob that is the installer itself (not tracked by git-lfs) overflows the buffer.
  const blob = git(dir, ["cat-file", "blob", `:./${name}`], LFS_POINTER_MAX_BYTES);
  const pointer = blob === undefined ? null : parseLfsPointer(blob);
  return pointer !== null && BigInt(pointer.size) === st.size ? pointer.oid : undefined;
}

/** An installer's SHA-256 and how it was found (see HashSource). */
export function installerHash(projectRoot: string, absPath: string, options: InstallerHashOptions = {}): InstallerHash {
  const now = options.now ?? Date.now;
  const st = statSync(absPath, { bigint: true });
  if (st.size < BigInt(LFS_POINTER_MAX_BYTES)) {
    const pointer = readLfsPointerSync(absPath);
    if (pointer) return { sha256: pointer.oid, via: "pointer" };
  }
  const key = statKey(st);
  const memoKey = `${absPath}\0${key}`;
  const known = memo.get(memoKey);
  if (known !== undefined) return { sha256: known, via: "cache" };

  const oid = options.useGit === false ? undefined : gitIndexOid(absPath, st);
  if (oid !== undefined) {
    memo.set(memoKey, oid);
    return { sha256: oid, via: "git-index" };
  }

  const cacheFile = options.cacheFile ?? defaultCacheFile(projectRoot);
  const cached = readCache(cacheFile).entries[absPath];
  if (cached?.key === key && /^[0-9a-f]{64}$/.test(cached.sha256)) {
    memo.set(memoKey, cached.sha256);
    return { sha256: cached.sha256, via: "cache" };
  }

  const startedAt = now();
  const sha256 = (options.hashFile ?? contentSha256Sync)(absPath);
  const after = statSync(absPath, { bigint: true });
  if (statKey(after) === key && lastChangeMs(st) <= startedAt - RACY_WINDOW_MS) {
    memo.set(memoKey, sha256);
    writeCache(cacheFile, absPath, { key, sha256 });
  }
  return { sha256, via: "read" };
}

/** An installer's SHA-256, lower-case hex: `installerHash` without the how. */
export function installerSha256(projectRoot: string, absPath: string, options?: InstallerHashOptions): string {
  return installerHash(projectRoot, absPath, options).sha256;
}

/** Forgets the in-process results (tests, and the benchmark's cold runs). */
export function clearInstallerHashMemo(): void {
  memo.clear();
}
