import { isDeepStrictEqual } from "node:util";
import { isMap, parseDocument, type Document } from "yaml";
import { JiraImagesError } from "../errors.ts";

/** A value written under `config:` of a stack file, as `<namespace>:<key>: <value>`. */
export interface ConfigEdit {
  /** The full key, e.g. `jira-images:promoted`. */
  key: string;
  /** A map is merged into an existing map key by key, so its comments and key order stay. */
  value: Readonly<Record<string, string>>;
  /** Comment above the key when it is added (one line). */
  comment: string;
}

export interface EditedStackFile {
  text: string;
  /** False: the file already holds this value; `text` is the input, byte for byte. */
  changed: boolean;
  /** The key's value before the edit (plain JSON), undefined when the key was absent. */
  previous: unknown;
}

/**
 * Sets one `config:` key of a stack file (`Pulumi.<stack>.yaml`) and keeps everything else as the
 * user wrote it: comments, key order, quoting, flow or block style. Pure: text in, text out.
 */
export function setStackConfigValue(text: string, file: string, edit: ConfigEdit): EditedStackFile {
  // Widened from Document.Parsed: the edit adds nodes that were not parsed from the text.
  const doc: Document = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new JiraImagesError("CONFIG_INVALID", `${file} is not valid YAML: ${doc.errors[0]!.message}`);
  }
  if (doc.contents === null) doc.contents = doc.createNode({});
  if (!isMap(doc.contents)) throw new JiraImagesError("CONFIG_INVALID", `${file}: the file must be a map with a "config" key`);
  if (!doc.has("config") || doc.get("config") === null) doc.set("config", doc.createNode({}));
  const config = doc.get("config", true);
  if (!isMap(config)) throw new JiraImagesError("CONFIG_INVALID", `${file}: "config" must be a map of key: value`);

  const current = config.get(edit.key, true);
  const previous: unknown = current === undefined ? undefined : doc.getIn(["config", edit.key], false);
  const plain = (value: unknown): unknown => (value !== null && typeof value === "object" && "toJSON" in value ? (value as { toJSON(): unknown }).toJSON() : value);
  const before = plain(previous);
  if (isDeepStrictEqual(before, { ...edit.value })) return { text, changed: false, previous: before };

  if (isMap(current)) {
    // Key by key: an existing map keeps its order and the comments on its entries.
    for (const [name, value] of Object.entries(edit.value)) current.set(name, value);
  } else if (current === undefined) {
    // `config: {}` is a flow map; the new entry reads better as a block.
    if (config.items.length === 0) config.flow = false;
    const pair = doc.createPair(edit.key, edit.value);
    (pair.key as { commentBefore?: string }).commentBefore = ` ${edit.comment}`;
    config.items.push(pair);
  } else {
    config.set(edit.key, doc.createNode(edit.value));
  }
  // lineWidth 0: no folding of long values into several lines (an ARN stays one line).
  const edited = doc.toString({ lineWidth: 0 });
  return { text: edited, changed: edited !== text, previous: before };
}
