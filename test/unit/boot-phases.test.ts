import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { BootTimeline, CONSOLE_MILESTONES } from "../../harness/guest/boot-phases.ts";
import { formatBootPhases } from "../../harness/report/row-facts.ts";

describe("boot milestones", () => {
  it("keeps the first sighting of each milestone, in time order", () => {
    const t = new BootTimeline(1000);
    t.mark("qemu", 1200);
    t.mark("kernel", 1100);
    t.mark("qemu", 5000);
    t.mark("command", 7000);
    expect(t.list()).toEqual([
      { phase: "kernel", ms: 100 },
      { phase: "qemu", ms: 200 },
      { phase: "command", ms: 6000 },
    ]);
  });

  it("finds the console milestones, in order, in captured vmrig boots (x86 whole; arm64 up to init)", () => {
    const cases = [
      { file: "x86-7.3-vmrig-boot.log", milestones: CONSOLE_MILESTONES },
      { file: "arm64-clean.log", milestones: CONSOLE_MILESTONES.filter((m) => m.phase !== "sshd") },
    ];
    for (const { file, milestones } of cases) {
      const text = readFileSync(new URL(`../fixtures/consoles/${file}`, import.meta.url), "latin1");
      const at = milestones.map((m) => text.indexOf(m.needle));
      expect(
        at.every((i) => i >= 0),
        file,
      ).toBe(true);
      expect(
        [...at].sort((a, b) => a - b),
        file,
      ).toEqual(at);
    }
  });

  it("reads as milestones with the step before each", () => {
    const text = formatBootPhases([
      { phase: "qemu", ms: 150 },
      { phase: "init", ms: 5030 },
      { phase: "command", ms: 5400 },
    ]);
    expect(text).toBe("qemu 0.15 s (+0.15), init 5.03 s (+4.88), command 5.40 s (+0.37)");
  });
});
