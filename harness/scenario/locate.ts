// From a key path in the parsed data back to where the user wrote it, so every problem is
// reported as file:line:column.

import { isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from "yaml";

export interface Position {
  line: number;
  column: number;
}

/** ["workloads", 2, "read", "blockSize"] -> "workloads[2].read.blockSize"; odd keys are quoted: kernels["6.18"]. */
export function keyPath(path: ReadonlyArray<PropertyKey>): string {
  return path
    .map((segment, i) => {
      if (typeof segment === "number") return `[${segment}]`;
      const key = String(segment);
      if (/^[A-Za-z_][\w-]*$/.test(key)) return i === 0 ? key : `.${key}`;
      return `[${JSON.stringify(key)}]`;
    })
    .join("");
}

/**
 * Where a path points. `at: "key"` points at the key itself (an unknown or misspelt key);
 * otherwise at the value. A mapping or list value is reported at the key that introduces it
 * (the line a reader looks for), and a path that runs past what was written (a missing key)
 * at the deepest part that exists.
 */
export function locate(
  doc: Document,
  lineCounter: LineCounter,
  path: ReadonlyArray<PropertyKey>,
  at: "key" | "value" = "value",
): Position {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;

  for (const [i, segment] of path.entries()) {
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p) === String(segment));
      if (!pair) break;
      const keyOffset = rangeStart(pair.key) ?? offset;
      const value = pair.value;
      const valueWritten = isScalar(value) ? !(value.value === null && !value.source) : value !== null;
      offset =
        (last && at === "key") || !valueWritten || isMap(value) || isSeq(value)
          ? keyOffset
          : (rangeStart(value) ?? keyOffset);
      node = value;
    } else if (isSeq(node) && typeof segment === "number") {
      const item = node.items[segment];
      if (item === undefined) break;
      offset = rangeStart(item) ?? offset;
      node = item;
    } else {
      break;
    }
  }

  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

/** A map key as the data sees it (keys are made strings by the loader). */
export function keyText(pair: Pair<unknown, unknown>): string {
  return String(isScalar(pair.key) ? pair.key.value : pair.key);
}

function rangeStart(node: unknown): number | undefined {
  return (node as Node | null | undefined)?.range?.[0];
}
