import { existsSync, readFileSync, statSync } from "node:fs";
import { join, posix } from "node:path";
import { JiraImagesError } from "./errors.ts";
import { installerSha256 } from "./installer-hash.ts";

/**
 * The pinned SHA-256 of every installer in packer/files, as `sha256sum` writes it
 * (`<sha256>  <file name>`), so that `cd packer/files && sha256sum -c SHA256SUMS` checks them too.
 */
export const INSTALLER_CHECKSUMS = "packer/files/SHA256SUMS";

/** File name (in packer/files) → pinned SHA-256, lower-case hex. */
export type InstallerPins = ReadonlyMap<string, string>;

const SUM_LINE = /^([0-9a-fA-F]{64}) [ *]([^/\s][^/]*)$/;

/** Parses a SHA256SUMS text; a malformed or contradictory line is an error naming `file:line`. */
export function parseSha256Sums(text: string, file: string): InstallerPins {
  const pins = new Map<string, string>();
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") return;
    const match = SUM_LINE.exec(line);
    if (!match) {
      throw new JiraImagesError(
        "INSTALLER_CHECKSUMS_INVALID",
        `${file}:${i + 1} is not "<sha256>  <file name>" (64 hex digits, two spaces, a file name in packer/files): ${JSON.stringify(line)}`,
      );
    }
    const [, sha256, name] = match as unknown as [string, string, string];
    const earlier = pins.get(name);
    if (earlier !== undefined && earlier !== sha256.toLowerCase()) {
      throw new JiraImagesError("INSTALLER_CHECKSUMS_INVALID", `${file}:${i + 1} pins ${name} a second time, with another SHA-256: keep one line`);
    }
    pins.set(name, sha256.toLowerCase());
  });
  return pins;
}

/** The pins of the project (none when INSTALLER_CHECKSUMS does not exist yet). */
export function readInstallerPins(projectRoot: string): InstallerPins {
  const path = join(projectRoot, INSTALLER_CHECKSUMS);
  return existsSync(path) ? parseSha256Sums(readFileSync(path, "utf8"), INSTALLER_CHECKSUMS) : new Map();
}

/** The pinned SHA-256 of an installer (project-relative path), or undefined when it has none. */
export function installerPin(pins: InstallerPins, installer: string): string | undefined {
  return pins.get(posix.basename(installer));
}

/** What is wrong with an installer's pin, as the program's preflight reports it. */
export interface InstallerPinProblem {
  code: "INSTALLER_NOT_PINNED" | "INSTALLER_CHECKSUM_MISMATCH";
  problem: string;
  fix: string;
}

/**
 * A build that would fail for sure: the installer has no pin (the jira template refuses to start),
 * or the installer in the checkout, or the oid of its git-lfs pointer (the SHA-256 of the real
 * file), differs from its pin (the build instance's check would fail). An installer missing or
 * empty is the preflight's other problem.
 */
export function installerPinProblem(projectRoot: string, installer: string, pins: InstallerPins): InstallerPinProblem | undefined {
  const pin = installerPin(pins, installer);
  const name = posix.basename(installer);
  if (pin === undefined) {
    return {
      code: "INSTALLER_NOT_PINNED",
      problem: `has no pinned SHA-256 in ${INSTALLER_CHECKSUMS}`,
      fix: `add the line "<sha256>  ${name}" to ${INSTALLER_CHECKSUMS} with the SHA-256 Atlassian publishes for the download (README: Installers (git-lfs))`,
    };
  }
  const path = join(projectRoot, installer);
  let info;
  try {
    info = statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined; // a link loop: the preflight reports the installer as missing
  }
  if (!info?.isFile() || info.size === 0) return undefined;
  const actual = installerSha256(projectRoot, path);
  if (actual === pin) return undefined;
  return {
    code: "INSTALLER_CHECKSUM_MISMATCH",
    problem: `has SHA-256 ${actual}, but ${INSTALLER_CHECKSUMS} pins ${pin}`,
    fix:
      "put back the installer Atlassian published for that checksum, or (after checking the new one against " +
      `Atlassian's published SHA-256) update its line in ${INSTALLER_CHECKSUMS}`,
  };
}
