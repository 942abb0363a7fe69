import { describe, expect, it } from "vitest";
import {
  admissions,
  availableMemoryBytes,
  fits,
  GUEST_OVERHEAD_BYTES,
  guestDemand,
  GuestScheduler,
  limitsFor,
  loadCeiling,
  parseJobs,
  type GuestDemand,
  type SchedulerLimits,
} from "../../harness/run/schedule/scheduler.ts";
import { loadFactor, loadScaledTimeScale } from "../../harness/run/schedule/load.ts";
import { runRowsScheduled } from "../../harness/run/schedule/rows.ts";
import type { KernelRowResult, RunResult, Scenario } from "../../harness/types.ts";
import type { PreparedKernel, RunEnv } from "../../harness/run/run-env.ts";

const GiB = 2 ** 30;
const d = (key: string, vcpus: number, memGiB = 1): GuestDemand => ({ key, vcpus, memoryBytes: memGiB * GiB });
const lim = (o: Partial<SchedulerLimits>): SchedulerLimits => ({
  maxGuests: Infinity,
  maxVcpus: Infinity,
  memoryBytes: 100 * GiB,
  cores: 2,
  ...o,
});

describe("--jobs", () => {
  it("parses auto and positive numbers only", () => {
    expect(parseJobs("auto")).toBe("auto");
    expect(parseJobs(undefined)).toBe("auto");
    expect(parseJobs("8")).toBe(8);
    for (const bad of ["0", "-1", "two", "1.5", ""]) expect(parseJobs(bad)).toBeUndefined();
  });

  it("auto bounds vCPUs by cores; N bounds guests, never vCPUs; both keep a memory reserve", () => {
    const host = { cores: 2, availableBytes: 20 * GiB };
    expect(limitsFor("auto", host)).toEqual({ maxGuests: Infinity, maxVcpus: 2, memoryBytes: 18 * GiB, cores: 2 });
    expect(limitsFor(8, host)).toEqual({ maxGuests: 8, maxVcpus: Infinity, memoryBytes: 18 * GiB, cores: 2 });
    // A small host keeps at least 512 MiB for itself.
    expect(limitsFor("auto", { cores: 1, availableBytes: 2 * GiB }).memoryBytes).toBe(1.5 * GiB);
  });

  it("counts QEMU and virtiofsd overhead on top of guest RAM", () => {
    expect(guestDemand("s\0k", 2, GiB)).toEqual({ key: "s\0k", vcpus: 2, memoryBytes: GiB + GUEST_OVERHEAD_BYTES });
  });

  it("reads MemAvailable from /proc/meminfo", () => {
    expect(availableMemoryBytes("MemTotal: 100 kB\nMemFree: 10 kB\nMemAvailable:   2048 kB\n")).toBe(2048 * 1024);
  });
});

describe("admission", () => {
  it("fits within vCPUs, guests and memory; anything fits an empty host", () => {
    const auto = lim({ maxVcpus: 2 });
    expect(fits([], d("big", 16, 64), auto)).toBe(true);
    expect(fits([d("a", 1)], d("b", 1), auto)).toBe(true);
    expect(fits([d("a", 1), d("b", 1)], d("c", 1), auto)).toBe(false);
    expect(fits([d("a", 2)], d("b", 1), auto)).toBe(false);
    expect(fits([d("a", 1)], d("b", 1), lim({ maxGuests: 1 }))).toBe(false);
    expect(fits([d("a", 1, 3)], d("b", 1, 2), lim({ memoryBytes: 4 * GiB }))).toBe(false);
    expect(fits([d("a", 1, 2)], d("b", 1, 2), lim({ memoryBytes: 4 * GiB }))).toBe(true);
  });

  it("admits in queue order and backfills a small guest past a large one that must wait", () => {
    const l = lim({ maxVcpus: 4 });
    expect(admissions([d("r", 2)], [d("big", 4), d("small", 2), d("small2", 1)], l)).toEqual([1]);
    expect(admissions([], [d("a", 1), d("b", 1), d("c", 1)], lim({ maxGuests: 2 }))).toEqual([0, 1]);
  });
});

describe("load-scaled timeouts", () => {
  it("scale by max(1, vCPUs / cores)", () => {
    expect(loadFactor(undefined)).toBe(1);
    expect(loadFactor({ vcpus: 1, cores: 2 })).toBe(1);
    expect(loadFactor({ vcpus: 2, cores: 2 })).toBe(1);
    expect(loadFactor({ vcpus: 8, cores: 2 })).toBe(4);
    expect(loadFactor({ vcpus: 8, cores: 0 })).toBe(1);
    expect(loadScaledTimeScale(4, { vcpus: 8, cores: 2 })).toBe(16);
    expect(loadScaledTimeScale(4, undefined)).toBe(4);
  });

  it("the ceiling counts running, queued and planned guests within the limits, and only shrinks", () => {
    // 8 one-vCPU guests, --jobs 8 on 2 cores: all may run at once.
    const eight = Array.from({ length: 8 }, (_, i) => d(`g${i}`, 1));
    expect(loadCeiling(eight.slice(0, 1), eight.slice(1), lim({ maxGuests: 8 }))).toBe(8);
    // --jobs 2: never more than the two largest (b and c together, once a is done).
    expect(loadCeiling([d("a", 1)], [d("b", 4), d("c", 2)], lim({ maxGuests: 2 }))).toBe(6);
    // auto: within the cores, except a lone oversized guest.
    expect(loadCeiling([d("a", 1)], [d("b", 1), d("c", 1)], lim({ maxVcpus: 2 }))).toBe(2);
    expect(loadCeiling([d("huge", 4)], [], lim({ maxVcpus: 2 }))).toBe(4);
    // The last guest alone.
    expect(loadCeiling([d("a", 1)], [], lim({ maxGuests: 8 }))).toBe(1);
  });
});

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe("GuestScheduler", () => {
  it("never runs more than the limits allow, and runs everything", async () => {
    const s = new GuestScheduler(lim({ maxVcpus: 3 }));
    let now = 0;
    let peak = 0;
    const jobs = [1, 2, 1, 3, 1, 1, 2].map((v, i) =>
      s.run(d(`j${i}`, v), async () => {
        now += v;
        peak = Math.max(peak, now);
        await tick(3 + (i % 3));
        now -= v;
        return i;
      }),
    );
    expect(await Promise.all(jobs)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(peak).toBeLessThanOrEqual(3);
    expect(s.stats).toMatchObject({ admitted: 7, peakVcpus: peak });
    expect(s.active).toEqual([]);
  });

  it("frees the slot when a job throws", async () => {
    const s = new GuestScheduler(lim({ maxGuests: 1 }));
    const a = s.run(d("a", 1), async () => {
      throw new Error("boom");
    });
    const b = s.run(d("b", 1), async () => "ran");
    await expect(a).rejects.toThrow("boom");
    expect(await b).toBe("ran");
  });

  it("gives early guests a load that counts guests planned but not yet submitted", async () => {
    const s = new GuestScheduler(lim({ maxGuests: 8 }));
    s.plan([d("later/1", 1), d("later/2", 1), d("now", 1)]);
    const seen = await s.run(d("now", 1), async (lease) => lease.load());
    expect(seen).toEqual({ vcpus: 3, cores: 2 });
    s.unplan("later/");
    expect(await s.run(d("solo", 1), async (lease) => lease.load().vcpus)).toBe(1);
  });
});

describe("runRowsScheduled", () => {
  const scenario = { file: "/s.yaml", machine: { cpus: 1, memoryBytes: GiB } } as unknown as Scenario;
  const kernels = ["k1", "k2", "k3", "k4"].map((label) => ({ entry: { label } }) as unknown as PreparedKernel);
  const baseResult = (): RunResult => ({
    scenario: "s",
    scenarioFile: "s.yaml",
    startedAt: "t",
    complete: false,
    host: { hostname: "h" },
    workloads: ["w"],
    rows: [],
  });

  it("runs rows concurrently within the limits, keeps kernel order, scales each row's load, writes one update at a time", async () => {
    const scheduler = new GuestScheduler(lim({ maxGuests: 3 }));
    let writing = false;
    let overlapped = false;
    const writes: string[][] = [];
    const env = {
      signal: new AbortController().signal,
      scheduler,
      onUpdate: async (r: RunResult) => {
        if (writing) overlapped = true;
        writing = true;
        await tick(1);
        writes.push(r.rows.map((x) => x.label));
        writing = false;
      },
    } as unknown as RunEnv & { scheduler: GuestScheduler };
    const loads: number[] = [];
    let running = 0;
    let peak = 0;
    const delays: Record<string, number> = { k1: 30, k2: 5, k3: 15, k4: 1 };
    const result = await runRowsScheduled(scenario, kernels, env, baseResult(), async (_s, k, rowEnv, run) => {
      running++;
      peak = Math.max(peak, running);
      loads.push(rowEnv.load!().vcpus);
      const row: KernelRowResult = { label: k.entry.label, description: "", artifacts: {}, cells: [], evidence: {} };
      await rowEnv.onUpdate({ ...run, rows: [...run.rows, row] });
      await tick(delays[k.entry.label]);
      running--;
      return row;
    });
    expect(result.rows.map((r) => r.label)).toEqual(["k1", "k2", "k3", "k4"]);
    expect(peak).toBe(3);
    expect(overlapped).toBe(false);
    // The first three saw 4 guests to come, capped at 3 at once.
    expect(loads.slice(0, 3)).toEqual([3, 3, 3]);
    // Rows in progress appear in updates, in kernel order.
    expect(writes.some((w) => w.length > 1)).toBe(true);
    for (const w of writes) expect(w).toEqual([...w].sort());
    expect(writes.at(-1)).toEqual(["k1", "k2", "k3", "k4"]);
  });

  it("propagates a row's error after the other rows finish", async () => {
    const scheduler = new GuestScheduler(lim({ maxGuests: 4 }));
    const env = {
      signal: new AbortController().signal,
      scheduler,
      onUpdate: async () => undefined,
    } as unknown as RunEnv & { scheduler: GuestScheduler };
    const finished: string[] = [];
    await expect(
      runRowsScheduled(scenario, kernels, env, baseResult(), async (_s, k) => {
        if (k.entry.label === "k2") throw new Error("bug in k2");
        await tick(10);
        finished.push(k.entry.label);
        return { label: k.entry.label, description: "", artifacts: {}, cells: [], evidence: {} };
      }),
    ).rejects.toThrow("bug in k2");
    expect(finished.sort()).toEqual(["k1", "k3", "k4"]);
  });
});
