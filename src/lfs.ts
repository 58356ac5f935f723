import { open } from "node:fs/promises";
import { createHash } from "node:crypto";
import { openSync, readSync, closeSync } from "node:fs";

/** A git-lfs pointer is always smaller than this (git-lfs spec). */
export const LFS_POINTER_MAX_BYTES = 1024;

const POINTER_VERSIONS = [
  "version https://git-lfs.github.com/spec/v1",
  "version https://hawser.github.com/spec/v1",
  "version http://git-media.io/v/2",
];

export interface LfsPointer {
  /** sha256 of the real content, lower-case hex. */
  oid: string;
  size: number;
}

/**
 * Parses a git-lfs pointer file's content. Returns null for anything that is not a pointer, so a
 * real (small) file never passes for one.
 */
export function parseLfsPointer(content: Buffer | string): LfsPointer | null {
  const text = typeof content === "string" ? content : content.toString("utf8");
  if (Buffer.byteLength(text) >= LFS_POINTER_MAX_BYTES) return null;
  // A checkout with core.autocrlf may have turned the pointer's LF into CRLF: still a pointer.
  const lines = text.split(/\r?\n/).filter((line) => line.length > 0);
  if (lines.length < 3 || !POINTER_VERSIONS.includes(lines[0]!)) return null;
  let oid: string | undefined;
  let size: number | undefined;
  for (const line of lines.slice(1)) {
    const oidMatch = /^oid sha256:([0-9a-f]{64})$/.exec(line);
    if (oidMatch) oid = oidMatch[1];
    const sizeMatch = /^size (\d+)$/.exec(line);
    if (sizeMatch && Number.isSafeInteger(Number(sizeMatch[1]))) size = Number(sizeMatch[1]);
  }
  return oid !== undefined && size !== undefined ? { oid, size } : null;
}

/** Reads at most the first KiB of a file: a pointer never needs more, an installer is never read whole. */
export function readLfsPointerSync(path: string): LfsPointer | null {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(LFS_POINTER_MAX_BYTES);
    return parseLfsPointer(buf.subarray(0, readSync(fd, buf, 0, LFS_POINTER_MAX_BYTES, 0)));
  } finally {
    closeSync(fd);
  }
}

/**
 * SHA-256 of a file's real content, lower-case hex: the oid of a git-lfs pointer (so a checkout
 * with or without `git lfs pull` gives the same value and an installer is never read whole just to
 * notice it is a pointer), otherwise the hash of the bytes.
 */
export function contentSha256Sync(path: string): string {
  const pointer = readLfsPointerSync(path);
  if (pointer) return pointer.oid;
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

/** `readLfsPointerSync` for the preflight, which scans many files at once. */
export async function readLfsPointer(path: string): Promise<LfsPointer | null> {
  const handle = await open(path, "r");
  try {
    const buf = Buffer.alloc(LFS_POINTER_MAX_BYTES);
    const { bytesRead } = await handle.read(buf, 0, LFS_POINTER_MAX_BYTES, 0);
    return parseLfsPointer(buf.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}
