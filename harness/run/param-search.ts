// A cell with a `search:` runs its workload once per probed value, in the row's guest while it
// stays healthy. The decisions are classify/param-search.ts's; this file runs the probes the
// state machine asks for and keeps each one's evidence. A probe that spoils the guest ends the
// search in this guest: the runner boots a fresh one and the search goes on from the runs so far.
import type { KernelEntry, ParamSearchSpec, Scenario, WorkloadSpec } from "../types.ts";
import { nextSearchStep, searchValueLabel, type ProbeRun, type SearchStep } from "../classify/param-search.ts";
import type { CellRun } from "./cell.ts";

export type SearchedWorkload = WorkloadSpec & { search: ParamSearchSpec };

/** What a search needs from the row it runs in. */
export interface SearchIo {
  /** Runs the workload as given (one probe) in the current guest. */
  runProbe(w: WorkloadSpec): Promise<CellRun>;
  /** Keeps one probe's evidence and files; returns the artifacts' paths (relative to the run). */
  keepProbe(name: string, cell: CellRun): Promise<string[]>;
  stage(text: string): void;
  aborted(): boolean;
}

export interface SearchInGuest {
  /** Done, or the value the next guest should probe. */
  step: SearchStep;
  guestSpoiled: boolean;
}

/** Pure: the workload as one probe runs it: the searched field set to `value`, no search. */
export function probeSpec(w: SearchedWorkload, value: number): WorkloadSpec {
  const { search, ...plain } = w;
  return search.on === "guest" ? plain : { ...plain, [search.field]: value };
}

/** Pure: the scenario one probe of a guest parameter boots with (scenario/param-search.ts GUEST_PARAMS). */
export function withGuestParam(
  guest: { s: Scenario; entry: KernelEntry },
  search: ParamSearchSpec,
  value: number,
): { s: Scenario; entry: KernelEntry } {
  const { s, entry } = guest;
  const word = /^cmdline:(.+)$/.exec(search.field)?.[1];
  // The row's last word: for most kernel parameters the last one wins, so the probe's value is used.
  if (word) return { s, entry: { ...entry, cmdline: [...entry.cmdline, `${word}=${value}`] } };
  if (search.field === "machine.memory") return { s: { ...s, machine: { ...s.machine, memoryBytes: value } }, entry };
  throw new Error(`no guest parameter ${search.field}`);
}

/** Pure: a file name for a probe ("bufferSize=260K-run-2-3"). */
export const probeFileName = (name: string) => name.replace(/[^\w.=-]+/g, "-");

/** Pure: "bufferSize=260K" and, with repeat, "run 2/3". */
export function probeName(s: ParamSearchSpec, value: number, runsAtValue: number): string {
  const run = s.repeat > 1 ? ` run ${runsAtValue + 1}/${s.repeat}` : "";
  return `${s.param}=${searchValueLabel(value, s.unit)}${run}`;
}

/** Probes in this guest until the search is done, the guest is spoiled or the run is interrupted. */
export async function searchInGuest(w: SearchedWorkload, runs: ProbeRun[], io: SearchIo): Promise<SearchInGuest> {
  for (;;) {
    const step = nextSearchStep(w.search, runs);
    if (step.kind === "done" || io.aborted()) return { step, guestSpoiled: false };
    const name = probeName(w.search, step.value, runs.filter((r) => r.value === step.value).length);
    io.stage(`${w.id}: ${name} (probe ${runs.length + 1})`);
    const cell = await io.runProbe(probeSpec(w, step.value));
    const artifacts = await io.keepProbe(name, cell);
    runs.push({ value: step.value, outcome: cell.outcome, durationMs: cell.durationMs, artifacts });
    if (cell.guestSpoiled) return { step: nextSearchStep(w.search, runs), guestSpoiled: true };
  }
}
