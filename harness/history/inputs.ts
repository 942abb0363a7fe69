// What went into a cell: the kernel binary (identity), the guest image, the host's QEMU and
// virtiofsd, the host and accelerator, and the part of the scenario that shapes this cell (the
// machine, shares, timeouts, anything else at the top level, this kernel's entry and this
// workload, but not the other rows, the other workloads, or the expectation). Two cells with
// equal inputs should give the same outcome; when they do not, the cell is flaky. Pure.
import { createHash } from "node:crypto";
import { parse } from "yaml";
import type { KernelRowResult } from "../types.ts";
import { describeExpectation } from "../classify/expect.ts";
import type { RunRecord } from "./history.ts";

/** One named input and its value; `show` is how a report prints it. */
export interface InputValue {
  value: string;
  show: string;
}

export type CellInputs = Record<string, InputValue>;

/** Inputs that define the experiment; "expected" changes `met`, never the outcome. */
export const OUTCOME_INPUTS = [
  "kernel",
  "image",
  "qemu",
  "virtiofsd",
  "host",
  "accel",
  "spec.machine",
  "spec.kernel",
  "spec.workload",
  "spec.shares",
  "spec.other",
];

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(",")}]`;
  if (v && typeof v === "object") {
    const record = v as Record<string, unknown>;
    const fields = Object.keys(record)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(record[k])}`);
    return `{${fields.join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

const short = (s: string, n = 100) => (s.length > n ? s.slice(0, n - 1) + "…" : s);
const hash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 12);

/** Parsed scenario files by text: a history of N runs has a handful of distinct texts. */
const parsed = new Map<string, Record<string, unknown> | undefined>();

function parseOnce(yamlText: string): Record<string, unknown> | undefined {
  if (!parsed.has(yamlText)) {
    if (parsed.size > 256) parsed.clear();
    let doc: Record<string, unknown> | undefined;
    try {
      doc = (parse(yamlText) ?? {}) as Record<string, unknown>;
    } catch {
      doc = undefined;
    }
    parsed.set(yamlText, doc);
  }
  return parsed.get(yamlText);
}

function specParts(yamlText: string | undefined, label: string, workload: string): Record<string, unknown> | undefined {
  if (!yamlText) return undefined;
  const doc = parseOnce(yamlText);
  if (!doc) return undefined;
  const {
    kernels,
    workloads,
    expect: _expect,
    name: _name,
    description: _description,
    machine,
    shares,
    ...other
  } = doc;
  const entry = { ...((kernels as Record<string, Record<string, unknown>> | undefined)?.[label] ?? {}) };
  delete entry.expect;
  const w = Array.isArray(workloads)
    ? (workloads as Array<Record<string, unknown>>).find((x) => x?.id === workload)
    : undefined;
  return {
    "spec.machine": machine,
    "spec.kernel": entry,
    "spec.workload": w,
    "spec.shares": shares,
    "spec.other": other,
  };
}

/** Inputs by run and cell: a history is compared many times over (index, trends, summary). */
const memo = new WeakMap<RunRecord, Map<string, CellInputs>>();

export function cellInputs(run: RunRecord, row: KernelRowResult, workload: string): CellInputs {
  let byCell = memo.get(run);
  if (!byCell) memo.set(run, (byCell = new Map<string, CellInputs>()));
  const key = `${row.label}\0${workload}`;
  let inputs = byCell.get(key);
  if (!inputs) byCell.set(key, (inputs = computeInputs(run, row, workload)));
  return inputs;
}

function computeInputs(run: RunRecord, row: KernelRowResult, workload: string): CellInputs {
  // A merged run's row ran on its shard's host: that host's QEMU, accelerator and name are its inputs.
  const h = row.host ?? run.result.host;
  const ev = row.evidence ?? {};
  // The runner records both as strings (identities); results.json is read back without a schema.
  const identity = (ev.kernel as string | undefined) ?? "";
  const image = ev.image as string | undefined;
  const out: CellInputs = {
    kernel: {
      value: identity || row.description,
      show: `${row.description || row.label}${identity ? ` [${short(identity, 90)}]` : ""}`,
    },
    image: { value: image ?? "", show: image ?? "unknown" },
    qemu: rowQemuInput(h.qemu, ev),
    virtiofsd: { value: h.virtiofsd ?? "", show: `virtiofsd ${h.virtiofsd ?? "unknown"}` },
    host: { value: h.hostname, show: h.hostname },
    accel: { value: row.accel ?? h.accel ?? "", show: row.accel ?? h.accel ?? "unknown" },
  };
  const parts = specParts(run.scenarioYaml, row.label, workload);
  if (parts) {
    for (const [k, v] of Object.entries(parts)) {
      const text = stable(v);
      out[k] = { value: hash(text), show: short(text) };
    }
  }
  const cell = row.cells.find((c) => c.workload === workload);
  if (cell) out.expected = { value: stable(cell.expected), show: describeExpectation(cell.expected) };
  return out;
}

/** The QEMU a row ran: its own build (`qemu:`, or level 2's under vfio.nested) when it names one, else the host's. */
function rowQemuInput(hostQemu: string | undefined, ev: Record<string, unknown>): { value: string; show: string } {
  const own = ev.qemu as { version?: string; source?: string } | undefined;
  if (own?.version)
    return { value: `${own.source ?? ""} ${own.version}`, show: `QEMU ${own.version} (${own.source ?? "row"})` };
  if (typeof ev.levelTwoQemuSource === "string") {
    const version = (ev.levelTwoQemu as string | undefined) ?? ""; // a version string, recorded by vfio/nested
    return { value: ev.levelTwoQemuSource, show: `level-2 QEMU ${version} (${ev.levelTwoQemuSource})` };
  }
  return { value: hostQemu ?? "", show: `QEMU ${hostQemu ?? "unknown"}` };
}

export interface InputChange {
  what: string;
  from: string;
  to: string;
}

/** The inputs that differ; an input missing on one side (an old run) is not a change. */
export function inputChanges(a: CellInputs, b: CellInputs): InputChange[] {
  const out: InputChange[] = [];
  for (const k of Object.keys(b)) {
    const x = a[k];
    const y = b[k]!;
    if (!x || x.value === y.value) continue;
    out.push({ what: k, from: x.show, to: y.show });
  }
  return out;
}

/** True when nothing that shapes the outcome changed. */
export function sameOutcomeInputs(changes: InputChange[]): boolean {
  return !changes.some((c) => OUTCOME_INPUTS.includes(c.what));
}
