// Host changes vmrig must undo however a run ends (a device rebound to vfio-pci, a module
// parameter): each registers an undo action here, and the signal and error paths of the CLI run
// whatever is still registered. The normal path undoes its own and unregisters it.

interface Action {
  name: string;
  run: () => Promise<void>;
}

const actions = new Map<number, Action>();
let next = 0;

/** Register an undo action; the returned function unregisters it (after it ran on the normal path). */
export function registerCleanup(name: string, run: () => Promise<void>): () => void {
  const id = next++;
  actions.set(id, { name, run });
  return () => void actions.delete(id);
}

export function pendingCleanups(): string[] {
  return [...actions.values()].map((a) => a.name);
}

/** Run every registered action, newest first, each once; failures are reported, not thrown. */
export async function runCleanups(
  report: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<void> {
  const all = [...actions.entries()].reverse();
  actions.clear();
  for (const [, a] of all) {
    try {
      await a.run();
    } catch (e) {
      report(`vmrig: cleanup "${a.name}" failed: ${(e as Error).message}`);
    }
  }
}
