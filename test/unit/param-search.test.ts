// A workload's `search:`: the load-time checks, the state machine (driven by oracles that stand
// for a guest: value -> outcome) and the cell it becomes.
import { describe, expect, it } from "vitest";
import {
  MAX_SKIPPED_VALUES,
  middleValue,
  nextSearchStep,
  searchCellLabel,
  searchCellOutcome,
  type ProbeRun,
  type SearchRange,
  type SearchStep,
} from "../../harness/classify/param-search.ts";
import { cellLabel } from "../../harness/classify/labels.ts";
import {
  probeFileName,
  probeName,
  probeSpec,
  searchInGuest,
  withGuestParam,
  type SearchIo,
} from "../../harness/run/param-search.ts";
import { parseScenario } from "../../harness/scenario/load.ts";
import type { CellOutcome, ParamSearchSpec } from "../../harness/types.ts";
import { SpecError } from "../../harness/util/errors.ts";

const K = 1024;
const M = 1024 * K;
const pass: CellOutcome = { kind: "pass" };
const enomem: CellOutcome = { kind: "errno", errno: "ENOMEM", mountHealthy: true };
const infra: CellOutcome = { kind: "infra", reason: "lost the guest" };
const eio: CellOutcome = { kind: "errno", errno: "EIO", mountHealthy: true };

type Oracle = (value: number, runsSoFar: readonly ProbeRun[]) => CellOutcome;

/** Runs the state machine against an oracle until it is done. */
function simulate(
  range: SearchRange,
  oracle: Oracle,
): { step: Extract<SearchStep, { kind: "done" }>; runs: ProbeRun[] } {
  const runs: ProbeRun[] = [];
  for (let i = 0; i < 1000; i++) {
    const step = nextSearchStep(range, runs);
    if (step.kind === "done") return { step, runs };
    runs.push({ value: step.value, outcome: oracle(step.value, runs), durationMs: 1 });
  }
  throw new Error("the search did not end");
}

const swiotlb: SearchRange = { from: 4 * K, to: 2 * M, granularity: 4 * K, repeat: 1 };
const probeBound = (r: SearchRange) => Math.ceil(Math.log2((r.to - r.from) / r.granularity)) + 2;
const distinctValues = (runs: ProbeRun[]) => new Set(runs.map((r) => r.value)).size;

describe("the search finds the flip of a monotonic cell within ceil(log2(values)) + 2 probes", () => {
  const cases: Array<[string, SearchRange, number]> = [
    ["swiotlb's 256K", swiotlb, 256 * K],
    ["just above from", swiotlb, 4 * K],
    ["just below to", swiotlb, 2 * M - 4 * K],
    ["a count range", { from: 0, to: 100, granularity: 1, repeat: 1 }, 37],
    ["two values", { from: 10, to: 20, granularity: 10, repeat: 1 }, 10],
    ["three values", { from: 10, to: 30, granularity: 10, repeat: 1 }, 20],
  ];
  it.each(cases)("%s", (_, range, lastGood) => {
    const { step, runs } = simulate(range, (v) => (v <= lastGood ? pass : enomem));
    expect(step.finding).toMatchObject({ kind: "flip", lastGood, firstBad: lastGood + range.granularity, skipped: [] });
    expect(runs.length).toBeLessThanOrEqual(probeBound(range));
    expect(runs.slice(0, 2).map((r) => r.value)).toEqual([range.to, range.from]);
  });
});

describe("the ends decide whether there is anything to search", () => {
  const cases: Array<[string, Oracle, object, number]> = [
    ["to passes", () => pass, { kind: "no-failure" }, 1],
    ["from fails the same way", () => enomem, { kind: "fails-throughout", target: { kind: "errno" } }, 2],
    ["to is INFRA", () => infra, { kind: "inconclusive" }, 1],
    ["from fails another way", (v) => (v === swiotlb.from ? eio : enomem), { kind: "inconclusive" }, 2],
    ["from is INFRA", (v) => (v === swiotlb.from ? infra : enomem), { kind: "inconclusive" }, 2],
  ];
  it.each(cases)("%s", (_, oracle, finding, runs) => {
    const r = simulate(swiotlb, oracle);
    expect(r.step.finding).toMatchObject(finding);
    expect(r.runs).toHaveLength(runs);
  });
});

describe("a value that says nothing about the chased failure is a skip, stepped around", () => {
  it("INFRA and another errno in the middle: the flip is still found, nothing left ambiguous", () => {
    const odd = new Map<number, CellOutcome>([
      [1028 * K, infra],
      [1024 * K, eio],
    ]);
    const { step, runs } = simulate(swiotlb, (v) => odd.get(v) ?? (v <= 256 * K ? pass : enomem));
    expect(step.finding).toMatchObject({ kind: "flip", lastGood: 256 * K, firstBad: 260 * K, skipped: [] });
    expect(step.verdicts.filter((v) => v.verdict === "skip").map((v) => v.value)).toEqual(
      expect.arrayContaining([...odd.keys()].filter((k) => runs.some((r) => r.value === k))),
    );
  });
  it("a skipped value next to the flip leaves the flip between its neighbours", () => {
    const { step } = simulate({ from: 0, to: 8, granularity: 1, repeat: 1 }, (v) =>
      v === 4 ? infra : v < 4 ? pass : enomem,
    );
    expect(step.finding).toMatchObject({ kind: "flip", lastGood: 3, firstBad: 5, skipped: [4] });
  });
  it(`more than ${MAX_SKIPPED_VALUES} skipped values: inconclusive, with the bracket so far`, () => {
    const { step } = simulate(swiotlb, (v) => (v === swiotlb.to ? enomem : v === swiotlb.from ? pass : infra));
    expect(step.finding).toMatchObject({ kind: "inconclusive", reason: `${MAX_SKIPPED_VALUES} values skipped` });
  });
});

describe("repeat: each value runs N times and is judged with bisect's thresholds", () => {
  it("a flaky failure (2 of 3) above 256K is still bad; 3 runs per value", () => {
    const range = { ...swiotlb, repeat: 3 };
    const flaky: Oracle = (v, runs) => {
      if (v <= 256 * K) return pass;
      return runs.filter((r) => r.value === v).length === 1 ? pass : enomem;
    };
    const { step, runs } = simulate(range, flaky);
    expect(step.finding).toMatchObject({ kind: "flip", lastGood: 256 * K, firstBad: 260 * K });
    expect(distinctValues(runs)).toBeLessThanOrEqual(probeBound(range));
    expect(runs.length).toBe(3 * distinctValues(runs));
  });
  it("one reproduction in 3 at a value: below the bad threshold, a skip", () => {
    const range = { from: 0, to: 2, granularity: 1, repeat: 3 };
    const { step } = simulate(range, (v, runs) =>
      v === 0 ? pass : v === 2 ? enomem : runs.filter((r) => r.value === 1).length === 0 ? enomem : pass,
    );
    expect(step.verdicts.find((v) => v.value === 1)).toMatchObject({ verdict: "skip" });
    expect(step.finding).toMatchObject({ kind: "flip", lastGood: 0, firstBad: 2, skipped: [1] });
  });
});

describe("middleValue", () => {
  const cases: Array<[number, number, number, number[], number | undefined]> = [
    [0, 8, 1, [], 4],
    [0, 8, 1, [4], 3],
    [0, 8, 1, [4, 3], 5],
    [0, 2, 1, [1], undefined],
    [0, 1, 1, [], undefined],
    [4096, 2097152, 4096, [], 4096 + 255 * 4096],
  ];
  it.each(cases)("(%d, %d, step %d, skipped %j) -> %s", (lo, hi, g, skipped, want) => {
    expect(middleValue(lo, hi, g, skipped)).toBe(want);
  });
});

describe("the cell: its label in every report, its outcome for expectations", () => {
  const spec: ParamSearchSpec = {
    param: "bufferSize",
    field: "bufferBytes",
    unit: "bytes",
    on: "workload",
    ...swiotlb,
  };
  const cases: Array<[string, Oracle, string, Partial<CellOutcome>]> = [
    [
      "flip",
      (v) => (v <= 256 * K ? pass : enomem),
      "PASS up to 256K, -ENOMEM from 260K (11 probes)",
      { kind: "errno", errno: "ENOMEM", at: "260K" },
    ],
    ["to passes", () => pass, "PASS at 2M: no failure to search for (1 probe)", { kind: "pass" }],
    ["from fails", () => enomem, "-ENOMEM already at 4K (2 probes)", { kind: "errno", at: "4K" }],
    [
      "to is INFRA",
      () => infra,
      "INFRA: search of bufferSize inconclusive: the bad end gave no kernel outcome to chase: " +
        "INFRA x1 (lost the guest) (1 probe)",
      { kind: "infra" },
    ],
  ];
  it.each(cases)("%s", (_, oracle, label, outcome) => {
    const { step, runs } = simulate(spec, oracle);
    expect(searchCellLabel(spec, step.finding, runs)).toBe(label);
    const o = searchCellOutcome(spec, step.finding, runs);
    expect(o).toMatchObject(outcome);
    expect(cellLabel(o)).toBe(label);
  });
  it("skipped values and repeats are said", () => {
    const s = { ...spec, from: 0, to: 8, granularity: 1, unit: "count" as const, repeat: 2 };
    const { step, runs } = simulate(s, (v) => (v === 4 ? infra : v < 4 ? pass : enomem));
    expect(searchCellLabel(s, step.finding, runs)).toBe("PASS up to 3, -ENOMEM from 5; 4 skipped (5 probes x 2 runs)");
  });
});

describe("search: in a scenario file", () => {
  const file = (search: string, kind = "readdir: { share: share, entries: 50 }") => `name: t
kernels:
  k: { debian: { version: "6.18.15" } }
shares: [{ tag: share }]
workloads:
  - id: w
    ${kind}
    search: ${search}
`;
  const problem = (text: string) => {
    try {
      parseScenario(text, "s.yaml");
    } catch (e) {
      expect(e).toBeInstanceOf(SpecError);
      return (e as Error).message;
    }
    throw new Error("loaded");
  };
  it("loads into the workload's spec, with the kind's field and the values in bytes", () => {
    const s = parseScenario(file("{ param: bufferSize, from: 4K, to: 2M, granularity: 4K }"), "s.yaml");
    expect(s.workloads[0]!.search).toEqual({ ...spec(), repeat: 1 });
    function spec(): Omit<ParamSearchSpec, "repeat"> {
      return {
        param: "bufferSize",
        field: "bufferBytes",
        unit: "bytes",
        on: "workload",
        from: 4 * K,
        to: 2 * M,
        granularity: 4 * K,
      };
    }
  });
  const bad: Array<[string, string, string]> = [
    [
      "{ param: bufferSiz, from: 4K, to: 2M, granularity: 4K }",
      "readdir: { share: share, entries: 50 }",
      's.yaml:8:22 workloads[0].search.param: unknown parameter "bufferSiz" for readdir (did you mean bufferSize?)' +
        " (searchable: bufferSize, entries; machine.memory, cmdline:<word>)",
    ],
    [
      "{ param: bufferSize, from: 2M, to: 4K, granularity: 4K }",
      "readdir: { share: share, entries: 50 }",
      "s.yaml:8:48 workloads[0].search.to: must be above from (2M), got 4K",
    ],
    [
      "{ param: bufferSize, from: 4K, to: 4K, granularity: 4K }",
      "readdir: { share: share, entries: 50 }",
      "s.yaml:8:48 workloads[0].search.to: must be above from (4K), got 4K",
    ],
    [
      "{ param: bufferSize, from: 4K, to: 2M, granularity: 3K }",
      "readdir: { share: share, entries: 50 }",
      "s.yaml:8:65 workloads[0].search.granularity: must divide to - from (2044K), got 3K",
    ],
    [
      "{ param: bufferSize, from: lots, to: 2M, granularity: 4K }",
      "readdir: { share: share, entries: 50 }",
      's.yaml:8:40 workloads[0].search.from: expected a size like 4K, got "lots"',
    ],
    [
      "{ param: entries, from: 1.5, to: 20, granularity: 1 }",
      "readdir: { share: share, entries: 50 }",
      "s.yaml:8:37 workloads[0].search.from: expected a whole number, got 1.5",
    ],
    [
      "{ param: size, from: 4K, to: 2M, granularity: 4K }",
      "read: { share: share, size: 1M, blockSize: 64K }",
      's.yaml:8:34 workloads[0].search.from: with size = "4K", blockSize must not exceed size (4K), got 64K',
    ],
    [
      "{ param: x, from: 1, to: 2, granularity: 1 }",
      'shell: { command: "true" }',
      "s.yaml:8:22 workloads[0].search.param: shell has no searchable parameters",
    ],
    [
      "{ param: entries, from: 1, to: 2, granularity: 1, repeat: 0 }",
      "readdir: { share: share, entries: 50 }",
      "s.yaml:8:71 workloads[0].search.repeat: must be greater than 0, got 0",
    ],
  ];
  it.each(bad)("%s on %s", (search, kind, message) => {
    expect(problem(file(search, kind))).toContain(message);
  });
});

describe("one guest's share of a search (run/param-search.ts)", () => {
  const w = {
    id: "boundary",
    kind: "readdir" as const,
    share: "share",
    entries: 50,
    bufferBytes: 32 * K,
    search: { param: "bufferSize", field: "bufferBytes", unit: "bytes" as const, on: "workload" as const, ...swiotlb },
  };
  it("a probe runs the workload with the field set and no search", () => {
    expect(probeSpec(w, 260 * K)).toEqual({
      id: "boundary",
      kind: "readdir",
      share: "share",
      entries: 50,
      bufferBytes: 260 * K,
    });
    expect(probeName(w.search, 260 * K, 0)).toBe("bufferSize=260K");
    expect(probeName({ ...w.search, repeat: 3 }, 260 * K, 1)).toBe("bufferSize=260K run 2/3");
  });
  it("a probe that spoils the guest hands the next value to a fresh guest, which goes on from the runs", async () => {
    const runs: ProbeRun[] = [];
    // Stands in for the guest: the values above 256K fail, and 1M also spoils the guest.
    const io = (spoilAt?: number): SearchIo => ({
      runProbe: async (p) => {
        const v = (p as { bufferBytes: number }).bufferBytes;
        return { outcome: v <= 256 * K ? pass : enomem, evidence: {}, durationMs: 1, guestSpoiled: v === spoilAt };
      },
      keepProbe: async (name) => [`${name}.json`],
      stage: () => undefined,
      aborted: () => false,
    });
    const first = await searchInGuest(w, runs, io(1 * M));
    expect(first).toMatchObject({ guestSpoiled: true, step: { kind: "probe", value: 512 * K } });
    expect(runs.map((r) => r.value)).toEqual([2 * M, 4 * K, 1 * M]);
    const second = await searchInGuest(w, runs, io());
    expect(second).toMatchObject({ guestSpoiled: false, step: { kind: "done", finding: { lastGood: 256 * K } } });
    expect(runs[2]!.artifacts).toEqual(["bufferSize=1M.json"]);
  });
});

describe("a guest parameter: a boot per probe", () => {
  const text = `name: t
kernels:
  k: { debian: { version: "6.18.15" } }
workloads:
  - id: small
    shell: { command: "true" }
    search: { param: machine.memory, from: 512M, to: 1G, granularity: 128M }
`;
  it("loads on any kind, and a probe boots a scenario with the value and runs the workload as written", () => {
    const s = parseScenario(text, "s.yaml");
    const w = s.workloads[0]!;
    expect(w.search).toEqual({
      param: "machine.memory",
      field: "machine.memory",
      unit: "bytes",
      on: "guest",
      from: 512 * M,
      to: 1024 * M,
      granularity: 128 * M,
      repeat: 1,
    });
    const guest = { s, entry: s.kernels[0]! };
    expect(withGuestParam(guest, w.search!, 640 * M).s.machine.memoryBytes).toBe(640 * M);
    const maxcpus = { ...w.search!, param: "cmdline:maxcpus", field: "cmdline:maxcpus", unit: "count" as const };
    expect(withGuestParam(guest, maxcpus, 1).entry.cmdline).toEqual(["maxcpus=1"]);
    expect(probeSpec({ ...w, search: w.search! }, 640 * M)).toEqual({
      id: "small",
      kind: "shell",
      command: "true",
      expectExit: 0,
    });
    expect(probeFileName("machine.memory=640M run 2/3")).toBe("machine.memory=640M-run-2-3");
  });
  it("an unknown parameter names the guest's beside the kind's", () => {
    expect(() => parseScenario(text.replace("machine.memory", "machine.memry"), "s.yaml")).toThrow(
      "s.yaml:7:22 workloads[0].search.param: shell has no searchable parameters " +
        "(the guest's: machine.memory, cmdline:<word>)",
    );
  });
});
