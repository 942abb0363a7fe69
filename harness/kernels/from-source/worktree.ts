// A build slot's source tree: a hard-linked copy of the pristine tree (cheap, and GNU patch
// replaces the files it changes rather than writing through the link) with this build's
// patches applied. Between builds only the files patches touched are restored, and files whose
// content ends up unchanged keep their old mtime, so make recompiles only what really changed.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { buildDirAtomic, exists, removeTempSiblings, writeFileAtomic } from "../../util/atomic-fs.ts";
import { applyPatches, touchedFiles, type ApplyOptions } from "./patches.ts";

interface SlotState {
  /** Source identity the copy was made from. */
  source: string;
  /** Files that may differ from the pristine tree (patched, or half-way through patching). */
  dirty: string[];
  /** sha256 of each applied patch, in order; null while patching is in progress or failed. */
  applied: string[] | null;
}

export interface PatchInput {
  file: string;
  text: string;
  sha256: string;
}

export function patchInput(file: string, text: string): PatchInput {
  return { file, text, sha256: createHash("sha256").update(text).digest("hex") };
}

const stateFile = (slot: string) => path.join(slot, "src-state.json");

async function readState(slot: string): Promise<SlotState | undefined> {
  try {
    return JSON.parse(await fs.readFile(stateFile(slot), "utf8")) as SlotState;
  } catch {
    return undefined;
  }
}

async function fileFacts(file: string): Promise<{ sha256: string; mtime: Date } | undefined> {
  try {
    const [data, st] = await Promise.all([fs.readFile(file), fs.stat(file)]);
    return { sha256: createHash("sha256").update(data).digest("hex"), mtime: st.mtime };
  } catch {
    return undefined;
  }
}

/**
 * Makes `slot`/src the pristine tree plus `patches` and returns its path. `sourceId` names the
 * pristine tree; a slot made from another source is rebuilt from scratch.
 */
export async function prepareWorkTree(
  slot: string,
  pristine: string,
  sourceId: string,
  patches: readonly PatchInput[],
  opts: ApplyOptions,
): Promise<string> {
  const src = path.join(slot, "src");
  let state = await readState(slot);
  if (!state || state.source !== sourceId || !(await exists(src))) {
    await fs.rm(src, { recursive: true, force: true });
    // The slot is locked: a temporary copy beside src was left by an interrupted run.
    await removeTempSiblings(src);
    opts.log("linking a work copy of the source tree");
    await buildDirAtomic(
      src,
      async (tmp) => {
        const linked = await execa("cp", ["-al", pristine, tmp], { cancelSignal: opts.signal, reject: false });
        if (linked.exitCode !== 0) {
          // Another filesystem than the pristine tree's (EXDEV): a real copy works everywhere.
          await fs.rm(tmp, { recursive: true, force: true });
          await execa("cp", ["-a", "--reflink=auto", pristine, tmp], { cancelSignal: opts.signal });
        }
      },
      { createTemp: false },
    );
    state = { source: sourceId, dirty: [], applied: [] };
    await writeFileAtomic(stateFile(slot), JSON.stringify(state));
  }
  const wanted = patches.map((p) => p.sha256);
  if (state.applied && state.applied.length === wanted.length && state.applied.every((h, i) => h === wanted[i])) {
    return src; // exactly these patches are applied already: touch nothing
  }

  const touched = new Set(patches.flatMap((p) => touchedFiles(p.text)));
  const involved = [...new Set([...state.dirty, ...touched])].sort();
  const before = new Map<string, { sha256: string; mtime: Date } | undefined>();
  for (const f of involved) before.set(f, await fileFacts(path.join(src, f)));
  await writeFileAtomic(
    stateFile(slot),
    JSON.stringify({ source: sourceId, dirty: involved, applied: null } satisfies SlotState),
  );

  // Back to pristine: copies (new inodes, fresh mtimes), never writes through the hard links.
  for (const f of state.dirty) {
    const target = path.join(src, f);
    await fs.rm(target, { force: true });
    if (await exists(path.join(pristine, f))) {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.copyFile(path.join(pristine, f), target);
    }
  }
  await applyPatches(src, patches, opts);

  // A file whose content is what it was before this call keeps its old mtime: no rebuild.
  for (const f of involved) {
    const was = before.get(f);
    if (!was) continue;
    const now = await fileFacts(path.join(src, f));
    if (now && now.sha256 === was.sha256) await fs.utimes(path.join(src, f), was.mtime, was.mtime);
  }
  await writeFileAtomic(
    stateFile(slot),
    JSON.stringify({ source: sourceId, dirty: [...touched].sort(), applied: wanted } satisfies SlotState),
  );
  return src;
}

/**
 * Applies `patches` to a scratch copy of just the files they touch, so a series that does not
 * apply to `pristine` is refused before the build waits for its slot (another build may hold it
 * for many minutes). The pristine tree is not touched.
 */
export async function checkPatchSeries(pristine: string, patches: readonly PatchInput[], opts: ApplyOptions) {
  if (patches.length === 0) return;
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-patch-check-"));
  try {
    for (const f of new Set(patches.flatMap((p) => touchedFiles(p.text)))) {
      if (!(await exists(path.join(pristine, f)))) continue;
      await fs.mkdir(path.dirname(path.join(scratch, f)), { recursive: true });
      await fs.copyFile(path.join(pristine, f), path.join(scratch, f));
    }
    await applyPatches(scratch, patches, { ...opts, log: () => undefined });
  } finally {
    await fs.rm(scratch, { recursive: true, force: true });
  }
}
