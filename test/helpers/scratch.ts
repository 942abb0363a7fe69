// A test file's scratch directory, removed after its tests; but when a test fails, every guest
// console (and QEMU's stderr and command line) under it is copied first to a directory that
// outlives it, and the path is printed: a failed boot's witness must not go with the temp dir.
import { afterAll, afterEach } from "vitest";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** Where failed tests' consoles go: $VMRIG_KEPT_CONSOLES, else <tmpdir>/vmrig-kept-consoles. */
import { keptConsolesRoot } from "../../harness/util/env.ts";

export { keptConsolesRoot };

const WITNESS = /^(console.*\.log|qemu-stderr\.log|qemu-cmdline\.txt|results\.json)$/;

/** Pure enough: every witness file under `dir`, as paths relative to it. */
export function witnessFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) walk(r);
      else if (e.isFile() && WITNESS.test(e.name)) out.push(r);
    }
  };
  try {
    walk("");
  } catch {
    // Nothing there (yet): nothing to keep.
  }
  return out;
}

/** Copy `dir`'s witness files to a fresh directory named after `label`; returns it (or undefined if none). */
export function keepConsoles(dir: string, label: string): string | undefined {
  const files = witnessFiles(dir);
  if (files.length === 0) return undefined;
  mkdirSync(keptConsolesRoot(), { recursive: true });
  const slug = label.replace(/[^\w.-]+/g, "-").slice(0, 80);
  const to = mkdtempSync(path.join(keptConsolesRoot(), `${slug}-`));
  for (const f of files) cpSync(path.join(dir, f), path.join(to, f));
  return to;
}

/** mkdtemp for a test file: removed after all its tests, its consoles kept when one fails. */
export function testScratch(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  afterEach((ctx) => {
    if (ctx.task.result?.state !== "fail") return;
    const kept = keepConsoles(dir, `${prefix}${ctx.task.name}`);
    if (kept) console.error(`[${ctx.task.name}] failed: its guests' consoles are kept in ${kept}`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
