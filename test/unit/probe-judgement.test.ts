import { describe, expect, it } from "vitest";
import { probeJudgement } from "../../harness/workloads/probe.ts";

// What the guest printed when the probe binary was missing from the image.
const missing = { kind: "exited" as const, code: 127, stdout: "", stderr: "sh: vmrig-probe: not found\n", ms: 4 };

describe("a probe run that printed no report", () => {
  it("is INFRA naming the exit code and stderr, with both streams kept", async () => {
    const j = await probeJudgement(missing, () => {
      throw new Error("no report to judge");
    });
    expect(j).toEqual({
      kind: "outcome",
      outcome: { kind: "infra", reason: "probe printed no result (exit 127): sh: vmrig-probe: not found" },
      evidence: { stdout: "", stderr: "sh: vmrig-probe: not found\n" },
    });
  });
});
