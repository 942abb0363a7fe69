import { describe, expect, it } from "vitest";
import { runningTotals } from "../../harness/vfio/mapping-budget.ts";

const M = 1024 ** 2;

describe("runningTotals", () => {
  it("adds each section's granules, subtracts the sections registered so far, and marks totals over the limit", () => {
    const sections = [
      { name: "a", startBytes: 0, sizeBytes: 4 * M, granularityBytes: 2 * M },
      { startBytes: 8 * M, sizeBytes: 6 * M, granularityBytes: 2 * M },
    ];
    expect(runningTotals(sections, 10, 12)).toEqual({
      granuleMappings: 5,
      steps: [
        { name: "a", granules: 2, runningTotal: 11, over: false },
        { granules: 3, runningTotal: 13, over: true },
      ],
    });
  });
  it("marks nothing over when the limit is unknown or 0 (QEMU makes no check)", () => {
    const one = [{ startBytes: 0, sizeBytes: 64 * M, granularityBytes: 2 * M }];
    expect(runningTotals(one, 10, undefined).steps[0]!.over).toBe(false);
    expect(runningTotals(one, 10, 0).steps[0]!.over).toBe(false);
    expect(runningTotals([], 10, 1)).toEqual({ granuleMappings: 0, steps: [] });
  });
});
