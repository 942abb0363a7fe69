// Environment variables set for the duration of a test, always put back (also on failure).
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach } from "vitest";

/** Runs `fn` with `vars` set, then restores each variable (or deletes one that was unset). */
export async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/**
 * A fresh, empty VMRIG_CACHE for every test of the enclosing describe, removed afterwards.
 * Returns a getter for the current test's directory.
 */
export function freshCachePerTest(prefix: string): () => string {
  let dir = "";
  let saved: string | undefined;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    saved = process.env.VMRIG_CACHE;
    process.env.VMRIG_CACHE = dir;
  });
  afterEach(async () => {
    if (saved === undefined) delete process.env.VMRIG_CACHE;
    else process.env.VMRIG_CACHE = saved;
    await fs.rm(dir, { recursive: true, force: true });
  });
  return () => dir;
}
