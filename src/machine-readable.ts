/**
 * Parser of Packer's `-machine-readable` output.
 *
 * Grammar (one record per line): `timestamp,target,type,data...`. The timestamp is Unix seconds,
 * the target is empty for global lines and `<type>.<name>` (HCL2) or the builder name for a build,
 * and each data field is escaped by Packer: `,` is written `%!(PACKER_COMMA)`, CR and LF as the
 * two-character sequences `\r` and `\n`. Packer never escapes a backslash itself, so a literal
 * backslash-n in a message cannot be told apart from a newline; we decode it as a newline, as
 * Packer's own docs say to.
 *
 * The module is pure: `parseLine` and `decodeField` are functions of their input, and
 * `MachineReadableParser` is a streaming fold over lines with bounded memory, so a 300k-line log
 * costs a few counters, the artifacts and the last few messages.
 */

import { parseImageTestsLine, type ImageTestsLine } from "./image-tests.ts";

export const PACKER_COMMA = "%!(PACKER_COMMA)";

/** What every image tests result line holds (packer/common/image-tests/run.sh). */
const IMAGE_TESTS_MARK = "image-tests: stage=";

/** Packer's final message after an interrupt was handled and every build cleaned up. */
const CANCELLED_MESSAGE = "Cleanly cancelled builds after being interrupted.";
/** Packer's message when an interrupt reaches it. */
const INTERRUPT_MESSAGE = "Cancelling build after receiving interrupt";
/** Packer's final message when it exits 0 without any artifact. */
const NO_ARTIFACTS_MESSAGE = "Builds finished but no artifacts were created.";
/**
 * The amazon plugin's region-copy cleanup (after every encrypted build, failed or not): it removes
 * the temporary image its "AMI" line (AMI: ami-...) named; with encrypt_boot every final image is a copy.
 */
const TEMPORARY_AMI_REMOVED_MESSAGE = "Deregistering the AMI and deleting unencrypted temporary AMIs and snapshots";

/** How far from a ui line's end an AMI ID it names can start: `ami-`, 17 hex digits, `)...` or an escaped newline, and slack. */
const AMI_TAIL = 40;
/** An AMI ID as the amazon plugin prints it. */
const AMI_ID = "ami-[0-9a-f]{8,17}";
/** What the amazon plugin says about an AMI in ui lines (packer-plugin-amazon step_create_ami, step_create_tags). */
const AMI_CREATED = new RegExp(`(?:^|: )AMI: (${AMI_ID})\\s*$`);
const AMI_TAGGED = new RegExp(`Adding tags to AMI \\((${AMI_ID})\\)`);
const AMI_DEREGISTERED = new RegExp(`Deregistered AMI id: (${AMI_ID})`);
/** A line of the "AMIs were created:" listing: `<region>: ami-...`. */
const AMI_LISTED = new RegExp(`^\\s*([a-z]{2}(?:-[a-z]+)+-\\d): (${AMI_ID})\\s*$`, "gm");

export interface MachineLine {
  /** Unix seconds as Packer wrote them. */
  timestamp: number;
  /** Empty for global lines, else the build (e.g. `amazon-ebs.jira`). */
  target: string;
  type: string;
  /** Decoded data fields. */
  data: string[];
}

export function decodeField(field: string): string {
  let out = field;
  if (out.includes(PACKER_COMMA)) out = out.replaceAll(PACKER_COMMA, ",");
  if (out.includes("\\")) out = out.replaceAll("\\n", "\n").replaceAll("\\r", "\r");
  return out;
}

function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Packer's record types are lower-case words with dashes (`ui`, `artifact-count`, `error-count`). */
function isRecordType(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const lower = c >= 97 && c <= 122;
    const digit = c >= 48 && c <= 57;
    if (!lower && !digit && c !== 45 && c !== 95) return false;
  }
  return true;
}

interface RawRecord {
  timestamp: string;
  target: string;
  type: string;
  /** Still-escaped data, without the leading comma; undefined when the line has no data. */
  rest: string | undefined;
}

function splitRecord(line: string): RawRecord | null {
  const c1 = line.indexOf(",");
  if (c1 <= 0) return null;
  const timestamp = line.slice(0, c1);
  if (!isDigits(timestamp)) return null;
  const c2 = line.indexOf(",", c1 + 1);
  if (c2 < 0) return null;
  const c3 = line.indexOf(",", c2 + 1);
  const type = c3 < 0 ? line.slice(c2 + 1) : line.slice(c2 + 1, c3);
  if (!isRecordType(type)) return null;
  return { timestamp, target: line.slice(c1 + 1, c2), type, rest: c3 < 0 ? undefined : line.slice(c3 + 1) };
}

function decodeData(rest: string | undefined): string[] {
  return rest === undefined ? [] : rest.split(",").map(decodeField);
}

/** A count Packer wrote (`artifact-count`, `error-count`, `files-count`), or undefined if it is not one. */
function parseCount(text: string): number | undefined {
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** A log that went through a CRLF conversion (a Windows checkout or copy) must parse the same. */
function withoutCr(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/** Parses one line (without its newline). Returns null for anything that is not a machine-readable record. */
export function parseLine(line: string): MachineLine | null {
  const raw = splitRecord(withoutCr(line));
  if (!raw) return null;
  return { timestamp: Number(raw.timestamp), target: raw.target, type: raw.type, data: decodeData(raw.rest) };
}

export interface Artifact {
  /** The build that produced it, e.g. `amazon-ebs.jira`. */
  target: string;
  /** Packer's artifact index within its build (the `artifact,<index>,...` number). */
  index: number;
  builderId?: string;
  /** Decoded artifact id; for AMIs `region:ami-...` pairs joined by `,`. */
  id?: string;
  string?: string;
  filesCount?: number;
  files: string[];
  /** Packer wrote `artifact,<index>,end`. */
  complete: boolean;
}

export type UiKind = "say" | "message" | "error" | "ask" | "other";

export interface UiLine {
  target: string;
  kind: UiKind;
  text: string;
}

export interface BuildError {
  target: string;
  message: string;
}

/**
 * An AMI that Packer's ui lines say was made: `created` ("AMI" line (AMI: ami-...), in the build region),
 * `tagged` (`Adding tags to AMI (ami-...)`, any region) or `listed` ("AMIs were created", with its region).
 */
export interface AmiMention {
  amiId: string;
  how: "created" | "tagged" | "listed";
  region?: string;
}

export interface BuildStream {
  /** Lines seen (records and other output). */
  lines: number;
  /** Lines that are not machine-readable records (plugin stderr, panics, `packer init` output). */
  otherLines: number;
  /** The last few non-record lines, for error reports. */
  otherTail: string[];
  /** From `packer -machine-readable version`. */
  version?: string;
  /** `artifact-count` per build. */
  artifactCounts: Record<string, number>;
  /** In stream order. */
  artifacts: Artifact[];
  /** From `error-count`. */
  errorCount?: number;
  /** `<target>,error,<message>` records: one per failed build. */
  errors: BuildError[];
  /** The last `ui,error` messages (Packer's own wording, decoded). */
  uiErrors: string[];
  /** The last few ui lines of any kind, for context. */
  uiTail: UiLine[];
  /** Packer reported an interrupt ("Cancelling build after receiving interrupt"). */
  interruptSeen: boolean;
  /** Packer finished cleaning up after an interrupt. */
  cancelled: boolean;
  /** Packer said that no artifact was created. */
  noArtifactsReported: boolean;
  /** AMIs Packer's ui lines say were created or copied, in order of first mention. */
  amiMentions: AmiMention[];
  /** AMIs Packer's ui lines say it deregistered again (its cleanup after an error). */
  removedAmis: string[];
  /** The stream ended in the middle of a line (Packer killed, log truncated). */
  truncated: boolean;
  /** The last image tests result line a provisioner printed, if any. */
  imageTests?: ImageTestsLine;
}

export interface ParserLimits {
  uiErrors: number;
  uiTail: number;
  otherTail: number;
}

const DEFAULT_LIMITS: ParserLimits = { uiErrors: 50, uiTail: 20, otherTail: 20 };

/** The last `limit` items pushed, without shifting an array on every push of a long stream. */
class Ring<T> {
  private readonly items: T[] = [];
  private next = 0;

  constructor(private readonly limit: number) {}

  push(item: T): void {
    if (this.items.length < this.limit) this.items.push(item);
    else this.items[this.next] = item;
    this.next = (this.next + 1) % this.limit;
  }

  toArray(): T[] {
    return this.items.length < this.limit ? [...this.items] : [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
}

interface RawUi {
  target: string;
  kind: UiKind;
  /** Still escaped: decoding is deferred until someone reads it. */
  text: string;
}

function uiKind(word: string): UiKind {
  return word === "say" || word === "message" || word === "error" || word === "ask" ? word : "other";
}

/**
 * Streaming parser: feed it text in chunks of any size (`push`), then call `end`. Chunk borders may
 * fall anywhere, including inside a line or an escape sequence.
 */
export class MachineReadableParser {
  private pending = "";
  private readonly artifactsByKey = new Map<string, Artifact>();
  private readonly otherTail: Ring<string>;
  private readonly uiErrors: Ring<string>;
  private readonly uiTail: Ring<RawUi>;
  private readonly stream: BuildStream = {
    lines: 0,
    otherLines: 0,
    otherTail: [],
    artifactCounts: {},
    artifacts: [],
    errors: [],
    uiErrors: [],
    uiTail: [],
    interruptSeen: false,
    cancelled: false,
    noArtifactsReported: false,
    amiMentions: [],
    removedAmis: [],
    truncated: false,
  };
  /** The last AMI named by an "AMI" line (AMI: ami-...): the temporary image a region-copy cleanup removes. */
  private lastCreatedAmi: string | undefined;

  constructor(limits: Partial<ParserLimits> = {}) {
    const bounds = { ...DEFAULT_LIMITS, ...limits };
    this.otherTail = new Ring(bounds.otherTail);
    this.uiErrors = new Ring(bounds.uiErrors);
    this.uiTail = new Ring(bounds.uiTail);
  }

  push(chunk: string): void {
    let start = 0;
    if (this.pending.length > 0) {
      const firstNewline = chunk.indexOf("\n");
      if (firstNewline < 0) {
        this.pending += chunk;
        return;
      }
      this.line(this.pending + chunk.slice(0, firstNewline));
      this.pending = "";
      start = firstNewline + 1;
    }
    for (;;) {
      const newline = chunk.indexOf("\n", start);
      if (newline < 0) break;
      this.line(chunk.slice(start, newline));
      start = newline + 1;
    }
    if (start < chunk.length) this.pending = chunk.slice(start);
  }

  /** Flushes a final unterminated line and returns the result. */
  end(): BuildStream {
    if (this.pending.length > 0) {
      this.stream.truncated = true;
      this.line(this.pending);
      this.pending = "";
    }
    return this.result();
  }

  /** The result so far (a snapshot; the parser may continue). */
  result(): BuildStream {
    const s = this.stream;
    return {
      ...s,
      otherTail: this.otherTail.toArray(),
      artifactCounts: { ...s.artifactCounts },
      artifacts: s.artifacts.map((a) => ({ ...a, files: [...a.files] })),
      errors: [...s.errors],
      amiMentions: s.amiMentions.map((m) => ({ ...m })),
      removedAmis: [...s.removedAmis],
      ...(s.imageTests ? { imageTests: { ...s.imageTests } } : {}),
      uiErrors: this.uiErrors.toArray().map(decodeField),
      uiTail: this.uiTail.toArray().map((u) => ({ ...u, text: decodeField(u.text) })),
    };
  }

  /** Feeds one complete line (without its newline). */
  line(rawLine: string): void {
    const s = this.stream;
    s.lines++;
    const line = withoutCr(rawLine);
    const record = splitRecord(line);
    if (!record) {
      if (line.length > 0) {
        s.otherLines++;
        this.otherTail.push(line);
      }
      return;
    }
    switch (record.type) {
      case "ui":
        this.ui(record);
        return;
      case "artifact":
        this.artifact(record);
        return;
      case "artifact-count": {
        const n = parseCount(decodeField(record.rest ?? ""));
        if (n !== undefined) s.artifactCounts[record.target] = n;
        return;
      }
      case "error-count": {
        const n = parseCount(decodeField(record.rest ?? ""));
        if (n !== undefined) s.errorCount = n;
        return;
      }
      case "error":
        s.errors.push({ target: record.target, message: decodeData(record.rest).join(",") });
        return;
      case "version": {
        const [version] = decodeData(record.rest);
        if (version) s.version = version;
        return;
      }
      default:
        return;
    }
  }

  private ui(record: RawRecord): void {
    const rest = record.rest ?? "";
    const comma = rest.indexOf(",");
    const kind = uiKind(comma < 0 ? rest : rest.slice(0, comma));
    // The messages looked for below hold no comma or newline, so the escaped text is enough.
    const text = comma < 0 ? "" : rest.slice(comma + 1);
    const s = this.stream;
    if (kind === "error") this.uiErrors.push(text);
    if (text.includes(IMAGE_TESTS_MARK)) {
      const tests = parseImageTestsLine(decodeField(text));
      if (tests) s.imageTests = tests;
    }
    // Whatever kind a Packer version uses for them: only their wording is stable.
    if (text.endsWith(CANCELLED_MESSAGE)) s.cancelled = true;
    else if (text.endsWith(NO_ARTIFACTS_MESSAGE)) s.noArtifactsReported = true;
    else if (text.endsWith(INTERRUPT_MESSAGE)) s.interruptSeen = true;
    else if (text.endsWith(TEMPORARY_AMI_REMOVED_MESSAGE) && this.lastCreatedAmi !== undefined) s.removedAmis.push(this.lastCreatedAmi);
    // Every line looked for ends with its AMI ID (and at most ")..." or an escaped newline), so only
    // the tail is searched: the long provisioning chatter costs a constant per line.
    if (text.indexOf("ami-", text.length - AMI_TAIL) >= 0) this.amiLine(decodeField(text));
    this.uiTail.push({ target: record.target, kind, text });
  }

  private mention(amiId: string, how: AmiMention["how"], region?: string): void {
    // Few AMIs per build: a list is enough.
    if (this.stream.amiMentions.some((m) => m.amiId === amiId && m.how === how)) return;
    this.stream.amiMentions.push(region === undefined ? { amiId, how } : { amiId, how, region });
  }

  private amiLine(text: string): void {
    const created = AMI_CREATED.exec(text);
    if (created) {
      this.lastCreatedAmi = created[1]!;
      this.mention(created[1]!, "created");
    }
    const tagged = AMI_TAGGED.exec(text);
    if (tagged) this.mention(tagged[1]!, "tagged");
    const removed = AMI_DEREGISTERED.exec(text);
    if (removed) this.stream.removedAmis.push(removed[1]!);
    if (text.includes("AMIs were created:")) {
      for (const [, region, amiId] of text.matchAll(AMI_LISTED)) this.mention(amiId!, "listed", region);
    }
  }

  private artifact(record: RawRecord): void {
    const [indexText, field, ...values] = decodeData(record.rest);
    const index = Number(indexText);
    if (indexText === undefined || !isDigits(indexText) || !Number.isSafeInteger(index) || field === undefined) return;
    const key = `${record.target}\u0000${index}`;
    let artifact = this.artifactsByKey.get(key);
    if (!artifact) {
      artifact = { target: record.target, index, files: [], complete: false };
      this.artifactsByKey.set(key, artifact);
      this.stream.artifacts.push(artifact);
    }
    // A field's value may itself have held commas that Packer escaped; any comma left is a field separator.
    const value = values.join(",");
    switch (field) {
      case "builder-id":
        artifact.builderId = value;
        return;
      case "id":
        artifact.id = value;
        return;
      case "string":
        artifact.string = value;
        return;
      case "files-count": {
        const n = parseCount(value);
        if (n !== undefined) artifact.filesCount = n;
        return;
      }
      case "file":
        // `artifact,<i>,file,<j>,<name>`
        if (values.length >= 2) artifact.files.push(values.slice(1).join(","));
        return;
      case "end":
        artifact.complete = true;
        return;
      default:
        return;
    }
  }
}

/** Parses a whole log at once. */
export function parseMachineReadable(text: string, limits?: Partial<ParserLimits>): BuildStream {
  const parser = new MachineReadableParser(limits);
  parser.push(text);
  return parser.end();
}
