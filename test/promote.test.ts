import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { setStackConfigValue } from "../src/driver/stack-file.ts";
import { choosePromotion, effectsInOneLine, promotionEffects, renderEffects, type Promotion } from "../src/driver/promote.ts";

const ROOT = resolve(import.meta.dirname, "..");
const KEY = "jira-images:promoted";
const COMMENT = "Promotion: written by promote";
const BASE = "ami-0aaaaaaaaaaaaaaa1";
const JIRA = "ami-0bbbbbbbbbbbbbbb2";
const OLD_JIRA = "ami-0ddddddddddddddd4";
const pin = { fromStack: "dev", stage: "jira", amiId: JIRA };

function edit(text: string, value: Record<string, string> = pin) {
  return setStackConfigValue(text, "Pulumi.prod.yaml", { key: KEY, value, comment: COMMENT });
}

describe("promotion pin in a stack file (yaml Document edit)", () => {
  it("adds the pin at the end of config: with a comment, every line of the file kept in place", () => {
    const original = readFileSync(join(ROOT, "Pulumi.prod.yaml"), "utf8");
    const result = edit(original);
    assert.equal(result.changed, true);
    assert.equal(result.previous, undefined);
    assert.ok(result.text.startsWith(original), `only appended:\n${result.text}`);
    assert.equal(
      result.text.slice(original.length),
      `  # ${COMMENT}\n  ${KEY}:\n    fromStack: dev\n    stage: jira\n    amiId: ${JIRA}\n`,
    );
    assert.deepEqual(parse(result.text).config[KEY], pin);
  });

  it("writing the same pin again changes nothing, byte for byte", () => {
    const once = edit(readFileSync(join(ROOT, "Pulumi.prod.yaml"), "utf8")).text;
    const twice = edit(once);
    assert.equal(twice.changed, false);
    assert.equal(twice.text, once);
    assert.deepEqual(twice.previous, pin);
  });

  it("updates an existing pin in place: its comments, its key order and the rest of the file stay", () => {
    const original = [
      "encryptionsalt: v1:c2FsdA==:v1:aXY=:Y2lwaGVy",
      "# Stack prod",
      "config:",
      "  jira-images:region: eu-west-1 # Ireland",
      "  # Reviewed promotion (PR #12)",
      "  jira-images:promoted:",
      `    amiId: ${OLD_JIRA} # the one before`,
      "    # where it comes from",
      "    fromStack: dev",
      "    stage: jira",
      "  jira-images:environment: prod",
      "",
    ].join("\n");
    const result = edit(original);
    assert.equal(result.changed, true);
    assert.deepEqual(result.previous, { ...pin, amiId: OLD_JIRA });
    assert.equal(result.text, original.replace(OLD_JIRA, JIRA));
  });

  it('completes a pin that names only where the stage comes from ("nothing promoted yet")', () => {
    const original = "config:\n  jira-images:promoted: {fromStack: dev, stage: jira}\n  jira-images:environment: prod\n";
    const result = edit(original);
    assert.deepEqual(parse(result.text).config, { [KEY]: pin, "jira-images:environment": "prod" });
    assert.equal(result.text, `config:\n  jira-images:promoted: { fromStack: dev, stage: jira, amiId: ${JIRA} }\n  jira-images:environment: prod\n`);
  });

  it("an empty flow config or a file without config: gets a block entry", () => {
    for (const original of ["config: {}\n", "# prod\n"]) {
      const result = edit(original);
      assert.deepEqual(parse(result.text).config, { [KEY]: pin }, original);
      assert.match(result.text, new RegExp(`^ {2}# ${COMMENT}\n {2}${KEY}:\n {4}fromStack: dev$`, "m"), result.text);
    }
  });

  it("a stack file that is not YAML, or whose config is not a map, is CONFIG_INVALID naming the file", () => {
    assert.throws(() => edit("config:\n  a: [1\n"), /^JiraImagesError: CONFIG_INVALID: Pulumi\.prod\.yaml is not valid YAML/);
    assert.throws(() => edit("config: [a, b]\n"), /^JiraImagesError: CONFIG_INVALID: Pulumi\.prod\.yaml: "config" must be a map/);
  });
});

/** dev's outputs as the program exports them (images entries as in src/pipeline.ts). */
function devOutputs(overrides: { jira?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    amiIds: { base: BASE, jira: JIRA, "custom-dev": "ami-0ccccccccccccccc3" },
    images: {
      base: { stage: "base", amiId: BASE, amis: { "eu-west-1": BASE }, parentStage: null, parentAmi: "none", tests: { passed: true, count: 5 } },
      jira: {
        stage: "jira",
        amiId: JIRA,
        amis: { "eu-west-1": JIRA },
        parentStage: "base",
        parentAmi: BASE,
        tests: { passed: true, count: 14 },
        ...overrides.jira,
      },
    },
  };
}

const request = { fromStack: "dev", stage: "jira", region: "eu-west-1" };
const PROD_STAGES = [{ name: "base" }, { name: "jira", parent: "base" }, { name: "custom-prod", parent: "jira" }];

describe("choosing the image to promote from the source stack's outputs", () => {
  it("pins the tested image in the target's region, with its lineage", () => {
    const promotion = choosePromotion(devOutputs(), request);
    assert.deepEqual(promotion, { pin, tests: { passed: true, count: 14 }, ancestors: [{ stage: "base", amiId: BASE }] });
  });

  it("takes the copy in the target's region, not the source's own AMI", () => {
    const copy = "ami-0eeeeeeeeeeeeeee5";
    const outputs = devOutputs({ jira: { amis: { "eu-central-1": copy, "eu-west-1": JIRA } } });
    assert.equal(choosePromotion(outputs, { ...request, region: "eu-central-1" }).pin.amiId, copy);
    assert.throws(
      () => choosePromotion(outputs, { ...request, region: "us-east-1" }),
      /^JiraImagesError: promote-region-missing: stack dev's jira image ami-0b\w+ has no copy in us-east-1, the target stack's region \(it has: eu-central-1, eu-west-1\); add us-east-1 to jira-images:amiRegions of dev/,
    );
  });

  it("refuses a stack without that image, naming the images it has and the up that builds it", () => {
    assert.throws(() => choosePromotion({}, request), /^JiraImagesError: promote-no-image: stack dev has no jira image in its `images` output \(images: none\); build it there first with `npm run pipeline -- up --stack dev`/);
    assert.throws(() => choosePromotion(devOutputs(), { ...request, stage: "custom-qa" }), /promote-no-image: stack dev has no custom-qa image in its `images` output \(images: base, jira\)/);
    assert.throws(() => choosePromotion(devOutputs({ jira: { amiId: "not-an-ami" } }), request), /promote-no-image: stack dev has an `images\.jira` output that is not an image entry/);
  });

  it("refuses an image without a test result (older state) and one whose tests did not pass", () => {
    const untested = devOutputs();
    delete (untested.images as { jira: { tests?: unknown } }).jira.tests;
    assert.throws(() => choosePromotion(untested, request), new RegExp(`^JiraImagesError: promote-untested: stack dev's jira image ${JIRA} has no image test result .*rebuild it with \`npm run pipeline -- up --stack dev\``));
    assert.throws(() => choosePromotion(devOutputs({ jira: { tests: { passed: "yes", count: 1 } } }), request), /promote-untested/);
    assert.throws(
      () => choosePromotion(devOutputs({ jira: { tests: { passed: false, count: 14 } } }), request),
      new RegExp(`^JiraImagesError: promote-tests-failed: stack dev's jira image ${JIRA} did not pass its image tests \\(14 run\\)`),
    );
  });
});

describe("what the target's next up does after a promotion", () => {
  const promotion: Promotion = choosePromotion(devOutputs(), request);

  it("custom-prod rebuilds when its parent AMI changes; base and jira come from dev", () => {
    const effects = promotionEffects(promotion, PROD_STAGES, "prod", { "custom-prod": { amiId: "ami-0fffffffffffffff6", parentAmi: OLD_JIRA } });
    assert.deepEqual(renderEffects(effects), [
      `  base         dev's ${BASE} (lineage of the promoted jira; prod does not build it)`,
      `  jira         promoted from dev ${JIRA} (tests passed, 14)`,
      `  custom-prod  rebuilds (parent AMI changes from ${OLD_JIRA} to ${JIRA})`,
    ]);
    assert.equal(
      effectsInOneLine(effects),
      `base: dev's ${BASE} (lineage of the promoted jira; prod does not build it); jira: promoted from dev ${JIRA} (tests passed, 14); custom-prod: rebuilds (parent AMI changes from ${OLD_JIRA} to ${JIRA})`,
    );
    assert.deepEqual(effects.map((e) => e.rebuild), [false, false, true]);
  });

  it("keeps custom-prod when it is built on that AMI already; builds it when the stack has no state", () => {
    const kept = promotionEffects(promotion, PROD_STAGES, "prod", { "custom-prod": { amiId: "ami-0fffffffffffffff6", parentAmi: JIRA } });
    assert.equal(kept[2]!.text, `keeps ami-0fffffffffffffff6 (built on ${JIRA} already)`);
    assert.equal(kept[2]!.rebuild, false);
    const fresh = promotionEffects(promotion, PROD_STAGES, "prod", undefined);
    assert.equal(fresh[2]!.text, `builds (no custom-prod image in prod's state yet; parent AMI ${JIRA})`);
  });

  it("a stage below a rebuilding one follows it", () => {
    const stages = [...PROD_STAGES, { name: "hardened-prod", parent: "custom-prod" }];
    const effects = promotionEffects(promotion, stages, "prod", { "custom-prod": { parentAmi: OLD_JIRA }, "hardened-prod": { parentAmi: "ami-0fffffffffffffff6" } });
    assert.equal(effects[3]!.text, "rebuilds (parent custom-prod rebuilds)");
  });
});
