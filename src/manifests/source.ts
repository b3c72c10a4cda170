import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from 'yaml';

/** A 1-based line and column. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Where a path (object keys and list indexes) points in a YAML document. */
export interface Located {
  /** Start of the value, or of the nearest ancestor when the path does not exist. */
  readonly valueOffset: number;
  /** Start of the key that holds the value, when the last step is a map key. */
  readonly keyOffset: number | undefined;
  /** Whether every step of the path exists. */
  readonly found: boolean;
}

/** The text of one YAML document with its line index, answering "where is this?" questions. */
export class YamlSource {
  readonly text: string;
  readonly #lines: LineCounter;
  readonly #doc: Document.Parsed | undefined;

  constructor(text: string, lines: LineCounter, doc?: Document.Parsed) {
    this.text = text;
    this.#lines = lines;
    this.#doc = doc;
  }

  /** 1-based line and column of a character offset. */
  position(offset: number): Position {
    const { line, col } = this.#lines.linePos(Math.max(0, Math.min(offset, this.text.length)));
    return line === 0 ? { line: 1, column: 1 } : { line, column: col };
  }

  /** Follows `path` through maps and lists (and aliases) and says where it ends. */
  locate(path: readonly (string | number)[]): Located {
    const doc = this.#doc;
    let node: unknown = doc?.contents ?? null;
    let valueOffset = rangeStart(node) ?? 0;
    let keyOffset: number | undefined;
    for (const step of path) {
      if (isAlias(node) && doc) node = node.resolve(doc) ?? null;
      keyOffset = undefined;
      if (isMap(node)) {
        // The last one: that is the value a duplicated key ends up with.
        const pair = node.items.findLast(
          (item) => isScalar(item.key) && String(item.key.value) === String(step),
        );
        if (!pair) return { valueOffset, keyOffset: undefined, found: false };
        keyOffset = rangeStart(pair.key);
        node = pair.value;
        valueOffset = rangeStart(node) ?? keyOffset ?? valueOffset;
      } else if (isSeq(node)) {
        const item = node.items[Number(step)];
        if (item === undefined) return { valueOffset, keyOffset: undefined, found: false };
        node = item;
        valueOffset = rangeStart(node) ?? valueOffset;
      } else {
        return { valueOffset, keyOffset: undefined, found: false };
      }
    }
    return { valueOffset, keyOffset, found: true };
  }
}

function rangeStart(node: unknown): number | undefined {
  return node !== null && typeof node === 'object' && 'range' in node ? (node as Node).range?.[0] : undefined;
}
