import { describe, expect, it } from "vitest";
import { artifactState, gcPolicy, gcSummary } from "../../harness/commands/nightly.ts";
import { VmrigError } from "../../harness/util/errors.ts";

describe("gcPolicy", () => {
  it("takes whole numbers over the defaults", () => {
    expect(gcPolicy({})).toEqual({ keep: 14, compressAfter: 1, maxRuns: Infinity });
    expect(gcPolicy({ keep: "3", "compress-after": "0", "max-runs": "5" })).toEqual({
      keep: 3,
      compressAfter: 0,
      maxRuns: 5,
    });
  });
  it("refuses anything else, and fewer --max-runs than --keep", () => {
    expect(() => gcPolicy({ keep: "-1" })).toThrow(new VmrigError('--keep takes a whole number, got "-1"'));
    expect(() => gcPolicy({ "compress-after": "1.5" })).toThrow(/^--compress-after takes a whole number/);
    expect(() => gcPolicy({ keep: "4", "max-runs": "3" })).toThrow("--max-runs (3) must be at least --keep (4)");
  });
});

describe("artifactState", () => {
  it("pruned when every artifact is gone, compressed when any is gzipped, else kept", () => {
    expect(artifactState([{ state: "missing" }, { state: "missing" }])).toBe("pruned");
    expect(artifactState([{ state: "missing" }, { state: "gz" }])).toBe("compressed");
    expect(artifactState([{ state: "plain" }, { state: "missing" }])).toBe("kept");
    expect(artifactState([])).toBe("kept");
  });
});

describe("gcSummary", () => {
  it("counts each action and says what was freed", () => {
    const plan = [
      { id: "a", action: "keep" as const, why: "" },
      { id: "b", action: "compress" as const, why: "" },
      { id: "c", action: "prune" as const, why: "" },
      { id: "d", action: "prune" as const, why: "" },
    ];
    const done = { before: 3 * 2 ** 20, after: 2 ** 19, freed: 0 };
    const policy = { keep: 14, compressAfter: 1, maxRuns: Infinity };
    expect(gcSummary(plan, 4, done, policy, true)).toBe(
      "gc (dry run): 4 runs; compress 1 (3.0 MiB -> 0.5 MiB), prune 2, delete 0 (0.0 MiB freed); " +
        "keep --keep 14, --compress-after 1\n",
    );
  });
});
