// Adding a workload kind: its file (test/fixtures/workload-kinds/uptime.ts), registered through
// the public registry API, is enough for the real loader, the runner's dispatch and the judge.
import { describe, expect, it } from "vitest";
import { parseScenario } from "../../harness/scenario/load.ts";
import { SpecError } from "../../harness/util/errors.ts";
import { registerWorkloadKind, workloadKind } from "../../harness/workloads/registry.ts";
import { uptime } from "../fixtures/workload-kinds/uptime.ts";

registerWorkloadKind(uptime);

const scenario = (workload: string) => `name: t
kernels:
  k: { debian: { version: "6.1" } }
workloads:
  - { id: up, ${workload} }
`;

const exited = (stdout: string) => ({ kind: "exited" as const, code: 0, stdout, stderr: "", ms: 3 });

describe("a workload kind in one file", () => {
  it("loads through the scenario loader, with its defaults", () => {
    const [w] = parseScenario(scenario("uptime: { minSeconds: 1 }"), "s.yaml").workloads;
    expect(w).toEqual({ id: "up", kind: "uptime", minSeconds: 1 });
    expect(parseScenario(scenario("uptime: {}"), "s.yaml").workloads[0]).toEqual({
      id: "up",
      kind: "uptime",
      minSeconds: 0,
    });
  });

  it("reports its own problems at file:line:col", () => {
    expect(() => parseScenario(scenario("uptime: { minSecs: 1 }"), "s.yaml")).toThrow(SpecError);
    expect(() => parseScenario(scenario("uptime: { minSecs: 1 }"), "s.yaml")).toThrow(
      "s.yaml:5:25 workloads[0].uptime.minSecs: unknown key (known: minSeconds)",
    );
    expect(() => parseScenario(scenario("uptime: { minSeconds: -1 }"), "s.yaml")).toThrow(
      "s.yaml:5:37 workloads[0].uptime.minSeconds: must be at least 0, got -1",
    );
  });

  it("gives the runner its guest command and judges captured output", async () => {
    const [w] = parseScenario(scenario("uptime: { minSeconds: 1 }"), "s.yaml").workloads;
    const kind = workloadKind(w!);
    expect(kind.guestCommand(w!, {})).toBe("cat /proc/uptime");
    const judge = (stdout: string) => kind.judge(w!, exited(stdout), {}, {});
    expect(await judge("12.34 45.67\n")).toMatchObject({
      kind: "outcome",
      outcome: { kind: "pass", detail: "up 12.34 s" },
    });
    expect(await judge("0.50 0.20\n")).toMatchObject({
      kind: "outcome",
      outcome: { kind: "fail", detail: "up 0.5 s" },
    });
    expect(await judge("cat: /proc/uptime: No such file\n")).toMatchObject({ outcome: { kind: "fail" } });
  });

  it("takes each name once", () => {
    registerWorkloadKind(uptime);
    expect(() => registerWorkloadKind({ ...uptime })).toThrow('a workload kind named "uptime" is already registered');
  });
});
