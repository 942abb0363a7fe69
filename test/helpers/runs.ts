// Synthetic run records for the pure nightly modules (compare, retention, HTML).
import type { CellOutcome, Expectation, KernelRowResult, RunResult } from "../../harness/types.ts";
import { expectationMet } from "../../harness/classify/expect.ts";
import type { RunRecord } from "../../harness/history/history.ts";

export interface FakeKernel {
  label: string;
  /** Kernel binary identity (what changes when the kernel changes). */
  identity: string;
  description?: string;
  /** workload id -> outcome (several for repeats) */
  cells: Record<string, CellOutcome | CellOutcome[]>;
  expected?: Record<string, string[]>;
}

export const PASS: CellOutcome = { kind: "pass" };
export const FAIL: CellOutcome = { kind: "fail", detail: "exit 1, expected 0" };
export const HANG: CellOutcome = { kind: "hang", what: "w did not finish in 480 s", wedged: false };
export const INFRA: CellOutcome = { kind: "infra", reason: "virtiofsd[share] exited (signal SIGKILL)" };
export const ENOMEM: CellOutcome = { kind: "errno", errno: "ENOMEM", mountHealthy: true };
export const crash = (title: string, signature?: string): CellOutcome => ({
  kind: "crash",
  title,
  excerpt: `${title}\nCall Trace:\n fuse_x+0x1/0x2`,
  signature,
});

const met = (o: CellOutcome, expected: string[]) => expectationMet(o, expected as Expectation);

export function fakeRun(opts: {
  scenario?: string;
  stamp: string;
  kernels: FakeKernel[];
  qemu?: string;
  virtiofsd?: string;
  complete?: boolean;
  yaml?: string;
  workloads?: string[];
  dir?: string;
}): RunRecord {
  const scenario = opts.scenario ?? "nightly";
  const workloads = opts.workloads ?? [...new Set(opts.kernels.flatMap((k) => Object.keys(k.cells)))];
  const startedAt = opts.stamp.replace(/T(\d\d)-(\d\d)-(\d\d)Z$/, "T$1:$2:$3.000Z");
  const rows: KernelRowResult[] = opts.kernels.map((k) => ({
    label: k.label,
    description: k.description ?? `Kernel ${k.identity}`,
    accel: "tcg",
    bootMs: 6000,
    artifacts: {
      console: `${k.label}/console.log`,
      qemuCmdline: `${k.label}/qemu-cmdline.txt`,
      "virtiofsd-share": `${k.label}/virtiofsd-share.log`,
      dmesg: `${k.label}/dmesg.txt`,
    },
    cells: Object.entries(k.cells).flatMap(([w, o]) =>
      (Array.isArray(o) ? o : [o]).map((outcome) => {
        const expected = (k.expected?.[w] ?? ["PASS"]) as never;
        return {
          kernel: k.label,
          workload: w,
          outcome,
          expected,
          met: met(outcome, expected),
          durationMs: 1500,
          evidence: {},
        };
      }),
    ),
    evidence: { kernel: k.identity, image: `image-of-${k.identity}` },
  }));
  const result: RunResult = {
    scenario,
    scenarioFile: `scenarios/${scenario}.yaml`,
    startedAt,
    finishedAt: startedAt,
    complete: opts.complete ?? true,
    host: { hostname: "runner-1", qemu: opts.qemu ?? "10.0.2", virtiofsd: opts.virtiofsd ?? "1.13.2", accel: "tcg" },
    workloads,
    rows,
  };
  const dir = opts.dir ?? `/results/${scenario}/${opts.stamp}`;
  return { dir, id: `${scenario}/${opts.stamp}`, scenario, stamp: opts.stamp, result, scenarioYaml: opts.yaml };
}

/** Night n (1-based) as a results directory stamp. */
export const night = (n: number) => `2026-11-${String(n).padStart(2, "0")}T02-00-00Z`;
