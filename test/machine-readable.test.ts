import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import {
  decodeField,
  MachineReadableParser,
  parseLine,
  parseMachineReadable,
  PACKER_COMMA,
  type BuildStream,
} from "../src/machine-readable.ts";
import { parseAmiArtifactId, selectStageImage } from "../src/runner/image.ts";
import { LOGS } from "./fixtures/fake-packer-harness.ts";

const log = (name: string) => readFileSync(join(LOGS, name), "utf8");

function chunked(text: string, cuts: number[]): BuildStream {
  const parser = new MachineReadableParser();
  let start = 0;
  for (const cut of [...new Set(cuts)].sort((a, b) => a - b)) {
    parser.push(text.slice(start, cut));
    start = cut;
  }
  parser.push(text.slice(start));
  return parser.end();
}

describe("machine-readable: fields and lines", () => {
  it("decodes Packer's escapes: %!(PACKER_COMMA) to a comma, literal \\n and \\r to line breaks", () => {
    assert.equal(decodeField(`a${PACKER_COMMA} b\\nc\\r`), "a, b\nc\r");
    assert.equal(decodeField("no escapes"), "no escapes");
  });

  it("splits timestamp, target, type and decoded data; a global line has an empty target", () => {
    assert.deepEqual(parseLine("1732541127,amazon-ebs.jira,artifact,0,id,us-east-1:ami-1%!(PACKER_COMMA)eu-west-1:ami-2"), {
      timestamp: 1732541127,
      target: "amazon-ebs.jira",
      type: "artifact",
      data: ["0", "id", "us-east-1:ami-1,eu-west-1:ami-2"],
    });
    assert.deepEqual(parseLine("1732541127,,ui,say,\\n==> Builds finished.\r"), {
      timestamp: 1732541127,
      target: "",
      type: "ui",
      data: ["say", "\n==> Builds finished."],
    });
  });

  it("returns null for lines that are not records (plugin stderr, panics, blank, human output)", () => {
    for (const line of ["", "panic: runtime error", "==> amazon-ebs.jira: Launching", "abc,,ui,say,x", "1732541127", "1732541127,,"]) {
      assert.equal(parseLine(line), null, line);
    }
  });
});

describe("machine-readable: realistic amazon-ebs logs", () => {
  it("finds the AMI of a single-region build with its builder id and the decoded 'AMIs were created' text", () => {
    const stream = parseMachineReadable(log("amazon-ebs-success.log"));
    assert.equal(stream.artifacts.length, 1);
    const [artifact] = stream.artifacts;
    assert.equal(artifact!.target, "amazon-ebs.jira");
    assert.equal(artifact!.builderId, "mitchellh.amazonebs");
    assert.equal(artifact!.id, "ap-northeast-1:ami-0123456789abcdef0");
    assert.equal(artifact!.string, "AMIs were created:\nap-northeast-1: ami-0123456789abcdef0\n");
    assert.equal(artifact!.complete, true);
    assert.deepEqual(stream.artifactCounts, { "amazon-ebs.jira": 1 });
    const selection = selectStageImage(stream);
    assert.equal(selection.kind, "one");
    assert.deepEqual(selection.kind === "one" && selection.image.amis, { "ap-northeast-1": "ami-0123456789abcdef0" });
    // Old-style `ui,message` lines are kept as such, with commas decoded.
    assert.ok(stream.uiTail.some((u) => u.kind === "message"));
    assert.equal(stream.otherLines, 0);
  });

  it("reads every region of a multi-region artifact (new-style `ui,say` log); the first listed is the stage's region", () => {
    const stream = parseMachineReadable(log("amazon-ebs-multi-region.log"));
    assert.ok(stream.uiTail.every((u) => u.kind === "say"));
    const selection = selectStageImage(stream);
    assert.equal(selection.kind, "one");
    if (selection.kind !== "one") return;
    assert.equal(selection.image.region, "ap-northeast-1");
    assert.equal(selection.image.amiId, "ami-0aaaaaaaaaaaaaaa1");
    assert.deepEqual(selection.image.amis, {
      "ap-northeast-1": "ami-0aaaaaaaaaaaaaaa1",
      "eu-west-1": "ami-0bbbbbbbbbbbbbbb2",
      "us-east-1": "ami-0ccccccccccccccc3",
    });
  });

  it("counts the manifest post-processor's repeated artifact (artifact-count 2) as one image", () => {
    const stream = parseMachineReadable(log("amazon-ebs-manifest.log"));
    assert.equal(stream.artifactCounts["amazon-ebs.custom-dev"], 2);
    assert.equal(stream.artifacts.length, 2);
    const selection = selectStageImage(stream);
    assert.equal(selection.kind, "one");
    assert.equal(selection.kind === "one" && selection.image.amiId, "ami-0d0d0d0d0d0d0d0d1");
  });

  it("reports two builds that each made an AMI as several images, naming both", () => {
    const selection = selectStageImage(parseMachineReadable(log("two-builds.log")));
    assert.equal(selection.kind, "several");
    if (selection.kind !== "several") return;
    assert.deepEqual(
      selection.images.map((i) => [i.target, i.amiId]),
      [
        ["amazon-ebs.jira", "ami-0111111111111111a"],
        ["amazon-ebs.jira-arm64", "ami-0222222222222222b"],
      ],
    );
  });

  it("decodes a failed build's errors (error-count, per-build error, ui errors) with commas and newlines restored", () => {
    const stream = parseMachineReadable(log("amazon-ebs-error.log"));
    assert.equal(stream.errorCount, 1);
    assert.equal(stream.errors.length, 1);
    assert.equal(stream.errors[0]!.target, "amazon-ebs.jira");
    assert.match(stream.errors[0]!.message, /operation\., because no identity-based policy/);
    assert.match(stream.errors[0]!.message, /\n\tstatus code: 403, request id: 5b7a3e2c/);
    assert.ok(stream.uiErrors.some((e) => e.startsWith("==> amazon-ebs.jira: Error launching source instance")));
    assert.equal(stream.noArtifactsReported, true);
    assert.equal(selectStageImage(stream).kind, "none");
  });

  it("recognises 'no artifacts' and a clean cancel", () => {
    const none = parseMachineReadable(log("no-artifacts.log"));
    assert.equal(none.noArtifactsReported, true);
    assert.deepEqual(none.artifacts, []);
    const cancelled = parseMachineReadable(log("cancelled.log"));
    assert.equal(cancelled.interruptSeen, true);
    assert.equal(cancelled.cancelled, true);
    assert.deepEqual(cancelled.artifacts, []);
  });

  it("parses a real Packer 1.6.6 null-builder run: two repeated null artifacts, no AMI", () => {
    const stream = parseMachineReadable(log("null-builder-1.6.6.log"));
    assert.deepEqual(
      stream.artifacts.map((a) => [a.target, a.index, a.builderId, a.id, a.complete]),
      [
        ["null.local", 0, "fnoeding.null", "Null", true],
        ["null.local", 1, "fnoeding.null", "Null", true],
      ],
    );
    assert.ok(stream.uiTail.some((u) => u.text === "    null.local: hello, world from shell-local"));
    assert.equal(selectStageImage(stream).kind, "none");
  });

  it("gives the same result whatever the chunk borders (inside lines, escapes and CRLF pairs)", () => {
    const text = log("amazon-ebs-multi-region.log").replaceAll("\n", "\r\n");
    const whole = parseMachineReadable(text);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 40 }), (cuts) => {
        assert.deepEqual(chunked(text, cuts), whole);
      }),
      { numRuns: 200 },
    );
  });

  it("flags a stream cut in the middle of a line and still reads what arrived", () => {
    const text = log("amazon-ebs-success.log");
    const stream = parseMachineReadable(text.slice(0, text.indexOf("artifact,0,string") + 20));
    assert.equal(stream.truncated, true);
    assert.equal(stream.artifacts[0]!.id, "ap-northeast-1:ami-0123456789abcdef0");
    assert.equal(stream.artifacts[0]!.complete, false);
  });

  it("keeps memory bounded on a long log: only the last few ui lines and errors are kept", () => {
    const parser = new MachineReadableParser();
    for (let i = 0; i < 10_000; i++) parser.line(`1732540877,,ui,error,    amazon-ebs.jira: line ${i}`);
    const stream = parser.end();
    assert.equal(stream.lines, 10_000);
    assert.equal(stream.uiErrors.length, 50);
    assert.equal(stream.uiErrors.at(-1), "    amazon-ebs.jira: line 9999");
    assert.equal(stream.uiTail.length, 20);
  });
});

describe("machine-readable: AMI artifact ids", () => {
  it("accepts region:ami pairs only, every part valid", () => {
    assert.deepEqual(parseAmiArtifactId("us-east-1:ami-12345678,eu-west-1:ami-0123456789abcdef0"), [
      { region: "us-east-1", amiId: "ami-12345678" },
      { region: "eu-west-1", amiId: "ami-0123456789abcdef0" },
    ]);
    for (const id of [
      "Null",
      "ami-12345678",
      "us-east-1:ami-12345678,garbage",
      "us-east-1:ami-XYZ12345",
      "us-east-1:ami-12345678,us-east-1:ami-87654321",
      "",
    ]) {
      assert.equal(parseAmiArtifactId(id), null, id);
    }
  });
});

describe("machine-readable: fuzz", () => {
  const fragments = [
    ",",
    "\n",
    "\r",
    "\\n",
    PACKER_COMMA,
    "%!(PACKER",
    "1732541127",
    "amazon-ebs.jira",
    "ui",
    "say",
    "message",
    "error",
    "error-count",
    "artifact",
    "artifact-count",
    "0",
    "1",
    "id",
    "builder-id",
    "end",
    "us-east-1:",
    "eu-west-1:",
    "ami-",
    "0123456789abcdef",
    "Cleanly cancelled builds after being interrupted.",
    " ",
    "é",
  ];
  const junk = fc.array(fc.constantFrom(...fragments), { maxLength: 60 }).map((parts) => parts.join(""));
  const realLines = [
    ...log("amazon-ebs-success.log").split("\n"),
    ...log("amazon-ebs-multi-region.log").split("\n"),
    ...log("two-builds.log").split("\n"),
  ];
  const realish = fc.constantFrom(...realLines);
  const input = fc
    .tuple(fc.array(fc.oneof(junk, realish, fc.string()), { maxLength: 80 }), fc.nat())
    .map(([lines, cut]) => {
      const text = lines.join("\n");
      return text.slice(0, text.length === 0 ? 0 : cut % (text.length + 1));
    });

  it("never throws on random lines, escapes and truncation, and never reports an AMI that is not in an artifact id line", () => {
    fc.assert(
      fc.property(input, fc.array(fc.nat(), { maxLength: 5 }), (text, cuts) => {
        const stream = chunked(
          text,
          cuts.map((c) => c % (text.length + 1)),
        );
        const selection = selectStageImage(stream);
        const images = selection.kind === "one" ? [selection.image] : selection.kind === "several" ? selection.images : [];
        const idLines = text
          .split("\n")
          .filter((l) => /,artifact,\d+,id,/.test(l))
          .map(decodeField);
        for (const image of images) {
          for (const [region, ami] of Object.entries(image.amis)) {
            assert.ok(
              idLines.some((l) => l.includes(`${region}:${ami}`)),
              `invented ${region}:${ami} from ${JSON.stringify(text)}`,
            );
          }
        }
      }),
      { numRuns: 1500 },
    );
  });
});
