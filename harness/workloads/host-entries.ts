// The host side of every directory-listing workload: a directory of N empty files, created
// before the guest looks, so the guest's count can be checked against what the host holds.
import { mkdir, open } from "node:fs/promises";
import path from "node:path";

/** Long-ish names so the listing is many KiB, as in a real directory. */
export async function createEntries(dir: string, count: number, suffix: string): Promise<{ hostEntries: number }> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i += 256) {
    await Promise.all(
      Array.from({ length: Math.min(256, count - i) }, (_, k) =>
        open(path.join(dir, `entry-${String(i + k).padStart(6, "0")}-${suffix}`), "w").then((f) => f.close()),
      ),
    );
  }
  return { hostEntries: count };
}
