import fs from "node:fs/promises";
import path from "node:path";

/**
 * Every path under `dir`, relative, with "/" separators, parents before children, sorted.
 * Symbolic links are listed, never followed: Node's own recursive readdir follows links to
 * directories, which for an absolute link in a staging tree (var/run -> /run) means the host's.
 */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      out.push(child);
      if (e.isDirectory()) await walk(child);
    }
  };
  await walk("");
  return out;
}
