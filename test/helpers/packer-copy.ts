import { cpSync, mkdirSync } from "node:fs";
import { join } from "node:path";

/**
 * Copies `<projectRoot>/packer` to `<root>/packer` with an empty `packer/files`: installers can be
 * gigabytes after `git lfs pull`, and tests add their own. Relative links (the stage folders'
 * `common-*.pkr.hcl`) are copied as they are, so that they point into the copy, not back here.
 */
export function copyPackerFolder(projectRoot: string, root: string): void {
  const files = join(projectRoot, "packer", "files");
  cpSync(join(projectRoot, "packer"), join(root, "packer"), {
    recursive: true,
    verbatimSymlinks: true,
    filter: (src) => !src.startsWith(files),
  });
  mkdirSync(join(root, "packer", "files"), { recursive: true });
}
