// Where a boot's seconds go, on the host's clock from the moment vmrig started the guest: each
// milestone is the first time its witness was seen (a console line as it reached console.log, or
// a host-side step returning). Kept per row so a slow boot says which part was slow.
import { GUEST_READY_MARKER } from "../image/guest-protocol.ts";
import type { BootPhase } from "../types.ts";

export type { BootPhase };
export type BootPhaseName = BootPhase["phase"];

/** The console lines that mark a milestone; the same in every kernel vmrig boots (x86 and arm64). */
export const CONSOLE_MILESTONES: ReadonlyArray<{ phase: BootPhaseName; needle: string }> = [
  { phase: "kernel", needle: "Linux version " },
  { phase: "init", needle: "Run /init as init process" },
  { phase: "sshd", needle: GUEST_READY_MARKER },
];

export const BOOT_PHASE_LABELS: Record<BootPhaseName, string> = {
  daemons: "virtio-fs daemons listening",
  qemu: "QEMU answering QMP",
  kernel: "kernel banner on the console",
  init: "init started",
  sshd: "NIC up, sshd started",
  command: "first SSH command returned",
};

export class BootTimeline {
  private readonly phases: BootPhase[] = [];

  constructor(private readonly startedAt: number) {}

  mark(phase: BootPhaseName, at = Date.now()): void {
    if (!this.phases.some((p) => p.phase === phase)) this.phases.push({ phase, ms: at - this.startedAt });
  }

  /** The milestones seen so far, in time order. */
  list(): BootPhase[] {
    return [...this.phases].sort((a, b) => a.ms - b.ms);
  }
}
