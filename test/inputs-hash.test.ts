import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadStackConfigFile, type StackConfig } from "../src/config.ts";
import {
  DANGLING_SYMLINK,
  MISSING,
  NO_PARENT,
  PARENT_AMI_UNKNOWN,
  fileContentHash,
  planStackInputs,
  treeHash,
  triggerEntries,
  type PlannedStage,
} from "../src/inputs-hash.ts";
import { jiraInstaller } from "../stages/jira.ts";
import { copyPackerFolder } from "./helpers/packer-copy.ts";
import { PROJECT_ROOT } from "./helpers/pulumi-mocks.ts";

const INSTALLER = jiraInstaller("9.12.15");

/** A throw-away copy of the project's packer/ folder (plus an unrelated README and source file), without installers. */
function copyProject(): string {
  const root = mkdtempSync(join(tmpdir(), "inputs-hash-"));
  copyPackerFolder(PROJECT_ROOT, root);
  writeFileSync(join(root, "README.md"), "# readme\n");
  mkdirSync(join(root, "src"));
  writeFileSync(join(root, "src", "index.ts"), "export {};\n");
  return root;
}

function lfsPointer(content: string): string {
  const oid = createHash("sha256").update(content).digest("hex");
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${Buffer.byteLength(content)}\n`;
}

const configs = {
  dev: loadStackConfigFile(PROJECT_ROOT, "dev"),
  prod: loadStackConfigFile(PROJECT_ROOT, "prod"),
};

/**
 * Which named triggers of each stage change between two plans, cascading rebuilds: a stage whose
 * inputs changed gets a new AMI, so each of its children sees `parentAmi` change.
 */
function triggerChanges(before: PlannedStage[], after: PlannedStage[]): Record<string, string[]> {
  const rebuilt = new Set<string>();
  const changes: Record<string, string[]> = {};
  for (const [i, stage] of after.entries()) {
    const old = before[i]!;
    assert.equal(old.stage, stage.stage);
    const named = (Object.keys(stage.hashes) as Array<keyof PlannedStage["hashes"]>).filter((k) => stage.hashes[k] !== old.hashes[k]);
    const list: string[] = [...named];
    if (stage.parent !== undefined && rebuilt.has(stage.parent)) list.push("parentAmi");
    if (list.length > 0) rebuilt.add(stage.stage);
    changes[stage.stage] = list;
  }
  return changes;
}

type Change = { files?: (root: string) => void; config?: Partial<StackConfig> };

function matrixRow(change: Change): { dev: Record<string, string[]>; prod: Record<string, string[]> } {
  const root = copyProject();
  try {
    const plan = (stack: "dev" | "prod") => planStackInputs({ ...configs[stack], ...change.config }, root);
    const before = { dev: planStackInputs(configs.dev, root), prod: planStackInputs(configs.prod, root) };
    change.files?.(root);
    const after = { dev: plan("dev"), prod: plan("prod") };
    const row = { dev: triggerChanges(before.dev, after.dev), prod: triggerChanges(before.prod, after.prod) };
    // The inputs_hash image tag changes exactly for the stages that rebuild: any content input of
    // their own (template, workspace, installers, vars) or of a stage above them.
    for (const stack of ["dev", "prod"] as const) {
      for (const [i, stage] of after[stack].entries()) {
        const tagChanged = stage.inputsHash !== before[stack][i]!.inputsHash;
        assert.equal(tagChanged, row[stack][stage.stage]!.length > 0, `${stack} ${stage.stage}: inputs_hash ${tagChanged ? "changed" : "unchanged"}, triggers ${JSON.stringify(row[stack][stage.stage])}`);
      }
    }
    return row;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const none = { base: [], jira: [] };

describe("named input hashes (triggers)", () => {
  describe("change matrix: exactly the stages that depend on a change see it, by name", () => {
    it("base template file: base rebuilds, its descendants through parentAmi", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/base/base.pkr.hcl"), "\n# changed\n") });
      assert.deepEqual(row.dev, { base: ["template"], jira: ["parentAmi"], "custom-dev": ["parentAmi"] });
      assert.deepEqual(row.prod, { base: ["template"], jira: ["parentAmi"], "custom-prod": ["parentAmi"] });
    });

    it("a script in the base template folder counts as template", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/base/scripts/os-base.sh"), "\n# changed\n") });
      assert.deepEqual(row.dev.base, ["template"]);
    });

    it("a file every stage shares (packer/common): every stage, as template", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/common/variables.pkr.hcl"), "\n# changed\n") });
      assert.deepEqual(row.dev, { base: ["template"], jira: ["template", "parentAmi"], "custom-dev": ["template", "parentAmi"] });
      assert.deepEqual(row.prod, { base: ["template"], jira: ["template", "parentAmi"], "custom-prod": ["template", "parentAmi"] });
    });

    it("the image-cleanup script every stage links in (packer/common/scripts): every stage, as template", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/common/scripts/image-cleanup.sh"), "\n# changed\n") });
      assert.deepEqual(row.dev, { base: ["template"], jira: ["template", "parentAmi"], "custom-dev": ["template", "parentAmi"] });
    });

    it("the installer's pin (packer/files/SHA256SUMS): jira's vars, the custom stage through parentAmi", () => {
      const row = matrixRow({
        files: (root) => writeFileSync(join(root, "packer/files/SHA256SUMS"), `${"ab".repeat(32)}  atlassian-jira-software-9.12.15.tar.gz\n`),
      });
      assert.deepEqual(row.dev, { base: [], jira: ["vars"], "custom-dev": ["parentAmi"] });
    });

    it("the image tests' runner: every stage, as tests", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/common/image-tests/run.sh"), "\n# changed\n") });
      assert.deepEqual(row.dev, { base: ["tests"], jira: ["tests", "parentAmi"], "custom-dev": ["tests", "parentAmi"] });
    });

    it("the jira suite of the image tests: the stages that run it (jira, custom), as tests", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/common/image-tests/jira.sh"), "\n# changed\n") });
      assert.deepEqual(row.dev, { base: [], jira: ["tests"], "custom-dev": ["tests", "parentAmi"] });
    });

    it("the custom suite of the image tests: only the custom stages, as tests", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/common/image-tests/custom.sh"), "\n# changed\n") });
      assert.deepEqual(row.dev, { ...none, "custom-dev": ["tests"] });
      assert.deepEqual(row.prod, { ...none, "custom-prod": ["tests"] });
    });

    it("the KMS key (kmsKeyId): every stage, as vars", () => {
      const row = matrixRow({ config: { kmsKeyId: "alias/jira-images" } });
      assert.deepEqual(row.dev, { base: ["vars"], jira: ["vars", "parentAmi"], "custom-dev": ["vars", "parentAmi"] });
    });

    it("a file the Chef stages share (packer/common): jira and the custom stages, as template", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/common/chef-stage.pkr.hcl"), "\n# changed\n") });
      assert.deepEqual(row.dev, { base: [], jira: ["template"], "custom-dev": ["template", "parentAmi"] });
      assert.deepEqual(row.prod, { base: [], jira: ["template"], "custom-prod": ["template", "parentAmi"] });
    });

    it("custom template file: only the custom stages", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/custom/custom.pkr.hcl"), "\n# changed\n") });
      assert.deepEqual(row.dev, { ...none, "custom-dev": ["template"] });
      assert.deepEqual(row.prod, { ...none, "custom-prod": ["template"] });
    });

    it("prod's var file: only custom-prod, as vars", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/custom/prod.pkrvars.hcl"), "\n# changed\n") });
      assert.deepEqual(row.dev, { ...none, "custom-dev": [] });
      assert.deepEqual(row.prod, { ...none, "custom-prod": ["vars"] });
    });

    it("Chef workspace file: jira and the custom stages, as workspace", () => {
      const row = matrixRow({ files: (root) => appendFileSync(join(root, "packer/chef/roles/jira-base.json"), "\n") });
      assert.deepEqual(row.dev, { base: [], jira: ["workspace"], "custom-dev": ["workspace", "parentAmi"] });
      assert.deepEqual(row.prod, { base: [], jira: ["workspace"], "custom-prod": ["workspace", "parentAmi"] });
    });

    it("installer appears (git lfs pull): jira as installers, custom through parentAmi", () => {
      const row = matrixRow({ files: (root) => writeFileSync(join(root, INSTALLER), "jira tarball bytes") });
      assert.deepEqual(row.dev, { base: [], jira: ["installers"], "custom-dev": ["parentAmi"] });
    });

    it("an installer of another version: nothing", () => {
      const row = matrixRow({ files: (root) => writeFileSync(join(root, jiraInstaller("10.3.1")), "other") });
      assert.deepEqual(row.dev, { ...none, "custom-dev": [] });
    });

    it("a var (chefNode): only the custom stage, as vars", () => {
      const row = matrixRow({ config: { chefNode: "dev-2" } });
      assert.deepEqual(row.dev, { ...none, "custom-dev": ["vars"] });
    });

    it("a var every stage gets (copy regions): every stage, as vars", () => {
      const row = matrixRow({ config: { amiRegions: ["us-east-1"] } });
      assert.deepEqual(row.dev, { base: ["vars"], jira: ["vars", "parentAmi"], "custom-dev": ["vars", "parentAmi"] });
    });

    it("the Jira version: jira's vars and installer, the custom stage's vars", () => {
      const row = matrixRow({ config: { jiraVersion: "9.12.16" } });
      assert.deepEqual(row.dev, { base: [], jira: ["installers", "vars"], "custom-dev": ["vars", "parentAmi"] });
    });

    it("unrelated files (README, program source, packer/plugins.pkr.hcl): nothing", () => {
      const row = matrixRow({
        files: (root) => {
          appendFileSync(join(root, "README.md"), "more\n");
          appendFileSync(join(root, "src/index.ts"), "// more\n");
          appendFileSync(join(root, "packer/plugins.pkr.hcl"), "\n");
        },
      });
      assert.deepEqual(row.dev, { ...none, "custom-dev": [] });
      assert.deepEqual(row.prod, { ...none, "custom-prod": [] });
    });

    it("a new parent AMI (same inputs): only the parentAmi entry of the child changes", () => {
      const [, jira] = planStackInputs(configs.dev, PROJECT_ROOT);
      const a = triggerEntries(jira!, "ami-0aaaaaaaaaaaaaaaa");
      const b = triggerEntries(jira!, "ami-0bbbbbbbbbbbbbbbb");
      assert.deepEqual(a.slice(0, 5), b.slice(0, 5));
      assert.deepEqual([a[5], b[5]], ["parentAmi=ami-0aaaaaaaaaaaaaaaa", "parentAmi=ami-0bbbbbbbbbbbbbbbb"]);
    });
  });

  it("planStackInputs names every trigger, with the parent AMI as a placeholder", () => {
    const plan = planStackInputs(configs.prod, PROJECT_ROOT);
    assert.deepEqual(plan.map((s) => s.stage), ["base", "jira", "custom-prod"]);
    assert.deepEqual(plan.map((s) => s.triggers.map((t) => t.slice(0, t.indexOf("=")))), Array(3).fill(["template", "workspace", "installers", "vars", "tests", "parentAmi"]));
    assert.deepEqual(plan.map((s) => s.triggers[5]), [`parentAmi=${NO_PARENT}`, `parentAmi=${PARENT_AMI_UNKNOWN}`, `parentAmi=${PARENT_AMI_UNKNOWN}`]);
    for (const s of plan) assert.match(s.inputsHash, /^sha256:[0-9a-f]{64}$/);
  });

  it("is the same in another checkout location and after touching files (no paths outside, no mtimes)", () => {
    const root = copyProject();
    try {
      const here = planStackInputs(configs.dev, PROJECT_ROOT);
      utimesSync(join(root, "packer/jira/jira.pkr.hcl"), new Date(0), new Date(0));
      assert.deepEqual(planStackInputs(configs.dev, root), here);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("hashes an installer by its git-lfs oid: pointer and pulled content hash the same", () => {
    const root = mkdtempSync(join(tmpdir(), "lfs-hash-"));
    try {
      writeFileSync(join(root, "pointer.tar.gz"), lfsPointer("the real installer"));
      writeFileSync(join(root, "real.tar.gz"), "the real installer");
      assert.equal(fileContentHash(join(root, "pointer.tar.gz")), fileContentHash(join(root, "real.tar.gz")));
      assert.equal(fileContentHash(join(root, "real.tar.gz")), `sha256:${createHash("sha256").update("the real installer").digest("hex")}`);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("counts a missing path as missing instead of failing", () => {
    const root = mkdtempSync(join(tmpdir(), "missing-hash-"));
    try {
      const expected = `sha256:${createHash("sha256").update(`packer/files/x.tar.gz\0${MISSING}\n`).digest("hex")}`;
      assert.equal(treeHash(root, ["packer/files/x.tar.gz"]), expected);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("hashes a symlinked file as its target's content; a dangling link or a folder link by its target path", () => {
    const root = mkdtempSync(join(tmpdir(), "symlink-hash-"));
    try {
      mkdirSync(join(root, "common"));
      mkdirSync(join(root, "stage"));
      writeFileSync(join(root, "common", "shared.pkr.hcl"), "shared\n");
      writeFileSync(join(root, "stage", "shared.pkr.hcl"), "shared\n");
      const copied = treeHash(root, ["stage"]);
      rmSync(join(root, "stage", "shared.pkr.hcl"));
      symlinkSync("../common/shared.pkr.hcl", join(root, "stage", "shared.pkr.hcl"));
      assert.equal(treeHash(root, ["stage"]), copied);

      const line = (file: string, value: string) => `${file}\0${value}\n`;
      const expected = (...lines: string[]) => `sha256:${createHash("sha256").update(lines.join("")).digest("hex")}`;
      symlinkSync("../common/gone.pkr.hcl", join(root, "stage", "gone.pkr.hcl"));
      symlinkSync("loop.pkr.hcl", join(root, "stage", "loop.pkr.hcl"));
      symlinkSync("..", join(root, "stage", "up"));
      assert.equal(
        treeHash(root, ["stage"]),
        expected(
          line("stage/gone.pkr.hcl", `${DANGLING_SYMLINK}:../common/gone.pkr.hcl`),
          line("stage/loop.pkr.hcl", `${DANGLING_SYMLINK}:loop.pkr.hcl`),
          line("stage/shared.pkr.hcl", fileContentHash(join(root, "common", "shared.pkr.hcl"))),
          line("stage/up", "symlink:.."),
        ),
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("does not depend on the order paths are listed in", () => {
    assert.equal(treeHash(PROJECT_ROOT, ["packer/base", "packer/jira"]), treeHash(PROJECT_ROOT, ["packer/jira", "packer/base"]));
  });
});
