const units: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Parses "1M", "64K", "512", "1G", "1MiB", "4KB" (binary units) into bytes; undefined when malformed. */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === "number") return Number.isInteger(input) && input >= 0 ? input : undefined;
  const m = /^\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(input);
  if (!m) return undefined;
  return Number(m[1]) * units[m[2]!.toUpperCase()]!;
}

/** 1048576 -> "1M", 4096 -> "4K", 1000 -> "1000". */
export function formatSize(bytes: number): string {
  for (const u of ["T", "G", "M", "K"]) {
    const f = units[u]!;
    if (bytes >= f && bytes % f === 0) return `${bytes / f}${u}`;
  }
  return String(bytes);
}
