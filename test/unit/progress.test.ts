// The plain progress lines of `vmrig run` (CI, pipes): a row's "done in" is its own time, not the
// time it waited while the rows before it ran. Stage texts as a real run printed them.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createProgress } from "../../harness/run/progress.ts";
import type { KernelRowResult } from "../../harness/types.ts";

const row = (label: string): KernelRowResult => ({ label, description: "", artifacts: {}, cells: [], evidence: {} });

function recorder() {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s) > 0 } as unknown as NodeJS.WriteStream;
  return { lines, progress: createProgress(stream) };
}

describe("createProgress (plain lines)", () => {
  beforeEach(() => vi.useFakeTimers({ now: 0 }));
  afterEach(() => vi.useRealTimers());

  it("times each row from its first boot, not from when the run prepared its kernel", () => {
    const { lines, progress } = recorder();
    for (const k of ["debian-7.3-arm64", "debian-7.3-x86"]) {
      progress.stage(k, "resolving kernel");
      progress.stage(k, "building guest image");
    }
    vi.advanceTimersByTime(5_000);
    progress.stage("debian-7.3-arm64", "booting");
    vi.advanceTimersByTime(68_000);
    progress.done("debian-7.3-arm64", row("debian-7.3-arm64"));
    progress.stage("debian-7.3-x86", "booting");
    vi.advanceTimersByTime(20_000);
    progress.stage("debian-7.3-x86", "ssh up in 18.8 s");
    vi.advanceTimersByTime(36_000);
    progress.done("debian-7.3-x86", row("debian-7.3-x86"));
    expect(lines.filter((l) => l.includes("done in"))).toEqual([
      "[debian-7.3-arm64] done in 68s\n",
      "[debian-7.3-x86] done in 56s\n",
    ]);
  });

  it("keeps the clock of a row that boots a fresh guest after a crash", () => {
    const { lines, progress } = recorder();
    progress.stage("k", "booting");
    vi.advanceTimersByTime(30_000);
    progress.stage("k", "booting fresh guest #2");
    vi.advanceTimersByTime(10_000);
    progress.done("k", row("k"));
    expect(lines.at(-1)).toBe("[k] done in 40s\n");
  });

  it("times a row that never boots from its first stage", () => {
    const { lines, progress } = recorder();
    progress.stage("k", "resolving kernel");
    vi.advanceTimersByTime(7_000);
    progress.done("k", row("k"));
    expect(lines).toEqual(["[k] resolving kernel\n", "[k] done in 7s\n"]);
  });
});
