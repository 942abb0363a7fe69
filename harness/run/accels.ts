// One accelerator per guest architecture a scenario uses: an x86 row next to arm64 rows runs
// under KVM where KVM works while the arm64 rows run under TCG (cross-arch factor 8 on the
// timeouts). Each is chosen with a real probe boot of that architecture's first kernel.
import type { Arch } from "../types.ts";
import { chooseAccelerator, type Accelerator } from "../qemu/accel.ts";
import { READY_MARKER } from "../guest/boot.ts";
import type { PreparedKernel } from "./run-env.ts";

export async function chooseAccelerators(
  requested: "auto" | Accelerator["name"],
  prepared: PreparedKernel[],
  signal: AbortSignal,
): Promise<Map<Arch, Accelerator>> {
  const byArch = new Map<Arch, Accelerator>();
  for (const k of prepared) {
    const arch = k.artifact.arch;
    if (byArch.has(arch)) continue;
    byArch.set(
      arch,
      await chooseAccelerator(
        requested,
        arch,
        { kernel: k.artifact.image, initrd: k.image.initrd, readyMarker: READY_MARKER },
        { signal },
      ),
    );
  }
  for (const k of prepared) k.accel = byArch.get(k.artifact.arch);
  return byArch;
}
