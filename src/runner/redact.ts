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

/** The environment's own AWS secrets: redacted by value wherever they appear, named or not. */
export const AWS_SECRET_ENV = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"] as const;
/**
 * Shorter values are not redacted by value: replacing every occurrence of a short string would
 * mangle the log, so the runner refuses a secret variable this short (SECRET_VAR_INVALID).
 */
export const MIN_SECRET_LENGTH = 8;
/** How the runner hands the secret variables' names to the watchdog's redaction (never their values). */
export const SECRET_VARS_ENV = "STAGE_RUNNER_SECRET_VARS";

/** Packer's variable names map to environment variables PKR_VAR_<name>. */
export function secretVarEnvName(name: string): string {
  return `PKR_VAR_${name}`;
}

/**
 * Every secret value the runner knows: the AWS secrets of its environment and the values of the
 * secret variables (PKR_VAR_<name>), each also in the spellings it takes in Packer's output
 * (machine-readable escaping) and in URLs (presigned URLs carry the session token encoded).
 */
export function knownSecretValues(env: NodeJS.ProcessEnv, secretVars: readonly string[]): string[] {
  const raw = [...AWS_SECRET_ENV.map((name) => env[name]), ...secretVars.map((name) => env[secretVarEnvName(name)])];
  const values = new Set<string>();
  for (const value of raw) {
    if (value === undefined || value.length < MIN_SECRET_LENGTH) continue;
    values.add(value);
    values.add(value.replaceAll(",", "%!(PACKER_COMMA)").replaceAll("\r", "\\r").replaceAll("\n", "\\n"));
    values.add(encodeURIComponent(value));
    // A multi-line secret is printed line by line; each long enough line is redacted on its own.
    for (const line of value.split(/\r?\n/)) if (line.length >= MIN_SECRET_LENGTH) values.add(line);
  }
  // Longest first, so that a value that contains another is replaced whole.
  return [...values].sort((a, b) => b.length - a.length);
}

/** Redaction of AWS credentials by shape and name, plus the known secret values by value. */
export class Redactor {
  private readonly values: readonly string[];

  constructor(values: readonly string[]) {
    this.values = [...values].sort((a, b) => b.length - a.length);
  }

  static fromEnvironment(env: NodeJS.ProcessEnv, secretVars: readonly string[]): Redactor {
    return new Redactor(knownSecretValues(env, secretVars));
  }

  /** The secret variables named in SECRET_VARS_ENV (what the runner hands its watchdog). */
  static forWatchdog(env: NodeJS.ProcessEnv): Redactor {
    const names = (env[SECRET_VARS_ENV] ?? "").split(",").filter((n) => n !== "");
    return Redactor.fromEnvironment(env, names);
  }

  /** Longest known value: a scan of streamed text must keep this much of the previous read. */
  get longestValue(): number {
    return this.values[0]?.length ?? 0;
  }

  contains(text: string): boolean {
    return containsCredential(text) || this.values.some((value) => text.includes(value));
  }

  redact(text: string): string {
    let out = text;
    for (const value of this.values) if (out.includes(value)) out = out.replaceAll(value, REDACTED_SECRET);
    return redactCredentials(out);
  }
}

/**
 * Whether streamed text held a credential, also when one was cut in two by the reads: each read is
 * scanned together with the end of the text before it (the current line, which a named credential
 * needs, and at least the longest known value).
 */
export class CredentialScanner {
  private tail = "";
  seen = false;

  constructor(private readonly redactor: Redactor) {}

  push(text: string): void {
    if (this.seen) return;
    const scan = this.tail + text;
    this.seen = this.redactor.contains(scan);
    const lineStart = scan.lastIndexOf("\n") + 1;
    this.tail = scan.slice(Math.max(0, Math.min(lineStart, scan.length - this.redactor.longestValue)));
  }
}

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
 * Rewrites a file with its credentials redacted (shapes, names and the redactor's values), line by line, without holding it in memory, then
 * atomically replaces it (same mode). Returns whether anything was redacted.
 */
export async function redactFileInPlace(path: string, redactor: Redactor = new Redactor([])): Promise<boolean> {
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
        const redacted = redactor.redact(block);
        if (redacted !== block) changed = true;
        await output.write(redacted);
      }
      const last = carry.toString("utf8");
      const redacted = redactor.redact(last);
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
