import { open, rename, unlink } from "node:fs/promises";

/**
 * Redaction of AWS credentials from Packer output. Packer before 1.15.4 could print secrets in its
 * machine-readable output, and a provisioning script may echo its environment; the log must not
 * keep them.
 *
 * Access key ids have a fixed shape (gitleaks' `aws-access-token` rule: AKIA/ASIA/ABIA/ACCA/A3T?
 * + 16 upper-case alphanumerics). Secret keys and session tokens are plain base64, which is
 * indistinguishable from a hash on its own, so they are only redacted next to a name that says
 * what they are (`aws_secret_access_key=`, `"SecretAccessKey": "`, `secret_key = "`...).
 */
const ACCESS_KEY_ID = /\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b/g;
const NAMED_SECRET =
  /((?:aws)?[_-]?(?:secret[_-]?(?:access[_-]?)?key|session[_-]?token|security[_-]?token)["']?\s*[:=]\s*["']?)([A-Za-z0-9/+]{16,}={0,2})/gi;

const REDACTED_ACCESS_KEY_ID = "[REDACTED-AWS-ACCESS-KEY-ID]";
const REDACTED_SECRET = "[REDACTED]";

export function containsCredential(text: string): boolean {
  ACCESS_KEY_ID.lastIndex = 0;
  NAMED_SECRET.lastIndex = 0;
  return ACCESS_KEY_ID.test(text) || NAMED_SECRET.test(text);
}

export function redactCredentials(text: string): string {
  return text
    .replace(ACCESS_KEY_ID, REDACTED_ACCESS_KEY_ID)
    .replace(NAMED_SECRET, (_match, name: string) => `${name}${REDACTED_SECRET}`);
}

const CHUNK_BYTES = 1 << 20;

/**
 * Rewrites a file with its credentials redacted, line by line, without holding it in memory, then
 * atomically replaces it (same mode). Returns whether anything was redacted.
 */
export async function redactFileInPlace(path: string): Promise<boolean> {
  const tmp = `${path}.redacting`;
  const input = await open(path, "r");
  let changed = false;
  try {
    const { mode } = await input.stat();
    const output = await open(tmp, "w", mode & 0o777);
    try {
      const buf = Buffer.alloc(CHUNK_BYTES);
      let carry = Buffer.alloc(0);
      for (;;) {
        const { bytesRead } = await input.read(buf, 0, CHUNK_BYTES, null);
        if (bytesRead === 0) break;
        const bytes = Buffer.concat([carry, buf.subarray(0, bytesRead)]);
        // Cut at the last newline, in bytes, so neither a line nor a multi-byte character is split.
        const cut = bytes.lastIndexOf(10) + 1;
        carry = Buffer.from(bytes.subarray(cut));
        if (cut === 0) continue;
        const block = bytes.toString("utf8", 0, cut);
        const redacted = redactCredentials(block);
        if (redacted !== block) changed = true;
        await output.write(redacted);
      }
      const last = carry.toString("utf8");
      const redacted = redactCredentials(last);
      if (redacted !== last) changed = true;
      await output.write(redacted);
    } finally {
      await output.close();
    }
  } catch (error) {
    // The original error is what matters; a temp file that is already gone is fine.
    await unlink(tmp).catch(() => undefined);
    throw error;
  } finally {
    await input.close();
  }
  if (changed) await rename(tmp, path);
  else await unlink(tmp);
  return changed;
}
