// Host changes on disk: every change vmrig makes to the host (driver bindings, mdevs, the DMA
// entry limit) is written here, with its undo as data, before the change is made. A run that
// ends normally removes its journal; one killed by SIGKILL, the OOM killer or a power cut leaves
// it for `vmrig vfio restore`.
import fs from "node:fs/promises";
import path from "node:path";
import { processAlive as alive } from "../util/process-alive.ts";
import { writeFileAtomic } from "../util/atomic-fs.ts";
import { cacheDir } from "../util/paths.ts";

/** How a device was bound before vmrig touched it: what its undo puts back. */
export interface OriginalBinding {
  driver: string | undefined;
  /** "" when none was set. */
  override: string;
}

/** A change's undo as data, so it can be replayed by another process after this one died. */
export type UndoStep =
  | { kind: "dma-entry-limit"; value: string }
  | { kind: "remove-mdev"; uuid: string }
  | { kind: "restore-binding"; bdf: string; original: OriginalBinding };

export interface HostJournal {
  host: string;
  pid: number;
  startedAt: string;
  /** Oldest first; undone newest first. */
  undo: Array<{ what: string; step: UndoStep }>;
}

export const defaultJournalDir = () => path.join(cacheDir(), "host-changes");

export const journalFile = (dir: string, pid = process.pid) => path.join(dir, `vfio-${pid}.json`);

export async function writeJournal(file: string, journal: HostJournal): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, JSON.stringify(journal, null, 2) + "\n");
}

/** Journals left by vmrig processes that are gone (a live one is still running and restores its own). */
export async function orphanedJournals(dir: string): Promise<Array<{ file: string; journal: HostJournal }>> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const out: Array<{ file: string; journal: HostJournal }> = [];
  for (const name of names.filter((n) => /^vfio-\d+\.json$/.test(n)).sort()) {
    const file = path.join(dir, name);
    const journal = JSON.parse(await fs.readFile(file, "utf8")) as HostJournal;
    if (!alive(journal.pid)) out.push({ file, journal });
  }
  return out;
}
