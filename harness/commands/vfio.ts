// `vmrig vfio restore`: puts back what a vmrig that died (SIGKILL, OOM, power loss) left changed
// on this host's VFIO setup, from the journal each binding keeps on disk until it is restored.
import { restoreOrphanedChanges } from "../vfio/bind.ts";
import { localHostFs } from "../vfio/host-fs.ts";
import { defaultJournalDir } from "../vfio/journal.ts";
import { ExitCode, VmrigError } from "../util/errors.ts";

export const vfioUsage = `  vfio restore                                  undo VFIO host changes a killed vmrig left behind`;

export async function vfioCommand(args: string[], out: (text: string) => void): Promise<number> {
  if (args.length !== 1 || args[0] !== "restore") throw new VmrigError(`usage: vmrig vfio restore`);
  const dir = defaultJournalDir();
  const r = await restoreOrphanedChanges(localHostFs(), dir, (l) => out(`${l}\n`));
  if (r.journals === 0) out(`nothing to restore: no journal of a vmrig that is gone in ${dir}\n`);
  else out(`restored ${r.restored.length} change(s) from ${r.journals} journal(s); ${r.failed.length} failed\n`);
  return r.failed.length ? ExitCode.usage : ExitCode.ok;
}
