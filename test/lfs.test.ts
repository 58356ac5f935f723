import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import fc from "fast-check";
import { LFS_POINTER_MAX_BYTES, parseLfsPointer, readLfsPointer, readLfsPointerSync } from "../src/lfs.ts";
import { tempDir } from "./fixtures/fake-packer-harness.ts";

const OID = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";
const pointer = (version = "https://git-lfs.github.com/spec/v1", oid = OID, size = "12345") =>
  `version ${version}\noid sha256:${oid}\nsize ${size}\n`;

describe("git-lfs pointer detection (src/lfs.ts)", () => {
  it("reads the oid and size of a pointer that git-lfs itself wrote; the oid is the real content's sha256", async () => {
    const dir = tempDir("lfs-test-");
    const installer = join(dir, "atlassian-jira-software-9.12.15.tar.gz");
    const content = Buffer.from("not really a tarball, but bytes all the same\n");
    writeFileSync(installer, content);
    const made = await execa("git", ["lfs", "pointer", `--file=${installer}`], { reject: false });
    if (made.exitCode !== 0) throw new Error(`git-lfs is needed for this test: apt-get install -y git-lfs (${made.stderr})`);
    const pointerFile = join(dir, "pointer");
    writeFileSync(pointerFile, `${made.stdout}\n`);
    const expected = { oid: createHash("sha256").update(content).digest("hex"), size: content.length };
    assert.deepEqual(readLfsPointerSync(pointerFile), expected);
    assert.deepEqual(await readLfsPointer(pointerFile), expected);
    assert.equal(readLfsPointerSync(installer), null, "the real file is not a pointer");
  });

  it("accepts the legacy hawser and git-media version lines and extension lines", () => {
    assert.deepEqual(parseLfsPointer(pointer("https://hawser.github.com/spec/v1")), { oid: OID, size: 12345 });
    assert.deepEqual(parseLfsPointer(pointer("http://git-media.io/v/2")), { oid: OID, size: 12345 });
    const withExtension = `version https://git-lfs.github.com/spec/v1\next-0-foo sha256:${"a".repeat(64)}\noid sha256:${OID}\nsize 7\n`;
    assert.deepEqual(parseLfsPointer(withExtension), { oid: OID, size: 7 });
  });

  it("rejects what is not a pointer: other text, a missing oid or size, a bad oid, an unknown version, 1 KiB or more", () => {
    const rejected = [
      "",
      "#!/bin/sh\necho hello\n",
      `version https://git-lfs.github.com/spec/v1\nsize 12345\n`,
      `version https://git-lfs.github.com/spec/v1\noid sha256:${OID}\n`,
      pointer(undefined, OID.toUpperCase()),
      pointer(undefined, OID.slice(1)),
      pointer(undefined, undefined, "12k"),
      pointer("https://example.com/spec/v9"),
      `oid sha256:${OID}\nversion https://git-lfs.github.com/spec/v1\nsize 1\n`,
      pointer() + "x".repeat(LFS_POINTER_MAX_BYTES),
    ];
    for (const text of rejected) assert.equal(parseLfsPointer(text), null, JSON.stringify(text.slice(0, 80)));
  });

  it("recognises a pointer whose line ends became CRLF (core.autocrlf), and refuses a size beyond a safe integer", () => {
    assert.deepEqual(parseLfsPointer(pointer().replace(/\n/g, "\r\n")), { oid: OID, size: 12345 });
    assert.equal(parseLfsPointer(pointer(undefined, undefined, "99999999999999999999")), null);
  });

  it("reads only the head of a large file: a big file that starts like a pointer is not one", () => {
    const dir = tempDir("lfs-test-");
    const big = join(dir, "big.tar.gz");
    writeFileSync(big, pointer() + "\0".repeat(5 * 1024 * 1024));
    assert.equal(readLfsPointerSync(big), null);
  });

  it("never throws on arbitrary bytes and only ever returns a 64-hex oid", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 1100 }), fc.string({ maxLength: 300 }).map((s) => pointer() + s)), (input) => {
        const found = parseLfsPointer(typeof input === "string" ? input : Buffer.from(input));
        if (found) {
          assert.match(found.oid, /^[0-9a-f]{64}$/);
          assert.ok(Number.isSafeInteger(found.size) && found.size >= 0);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("throws for a file that does not exist rather than calling it a real file", async () => {
    const missing = join(tempDir("lfs-test-"), "missing.tar.gz");
    assert.throws(() => readLfsPointerSync(missing), { code: "ENOENT" });
    await assert.rejects(readLfsPointer(missing), { code: "ENOENT" });
  });
});
