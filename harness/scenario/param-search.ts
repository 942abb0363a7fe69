// A workload's `search:`: binary-search the value of one numeric parameter where the cell's
// outcome flips. The kind declares which of its parameters may be searched (`searchable`), so the
// file is checked here, at load time, with file:line:col like every other key:
//
//   - id: boundary
//     readdir: { share: share, entries: 5000 }
//     search: { param: bufferSize, from: 4K, to: 2M, granularity: 4K }   # repeat: 3 optional
import { z } from "zod";
import type { ParamSearchSpec, SearchUnit } from "../types.ts";
import type { AnyWorkloadKind, SearchableParam } from "../workloads/kind.ts";
import { strict } from "../workloads/fields.ts";
import { workloadKeys } from "../workloads/registry.ts";
import { formatSize, parseSize } from "../util/size.ts";
import { didYouMean, show } from "./messages.ts";
import { isMapping } from "./references.ts";

const searchValue = (what: string) =>
  z
    .union([z.string(), z.number()], {
      error: (issue) => `expected a number or a size like 4K, got ${show(issue.input)}`,
    })
    .meta({ description: `${what}: a size ("4K") for a size parameter, a whole number for a count.` });

export const searchSchema = strict({
  param: z
    .string()
    .min(1)
    .meta({ description: "The parameter of the workload's kind to vary (its name in the kind's mapping)." }),
  from: searchValue("The low end, probed first with `to`"),
  to: searchValue("The high end; its outcome is the failure the search chases"),
  granularity: searchValue("The step between values; it must divide to - from"),
  repeat: z
    .number()
    .int()
    .positive()
    .default(1)
    .meta({ description: "Runs per value, judged as bisect judges a commit." }),
}).meta({
  description:
    "Binary-search the value of one numeric parameter where the cell's outcome flips (from passes, to fails).",
});

type Written = z.output<typeof searchSchema>;

/**
 * Parameters of the guest itself, searchable on any workload: each probe boots a guest of its
 * own with the value (harness/run/param-search.ts withGuestParam applies them).
 */
export const GUEST_PARAMS: Record<string, SearchableParam & { on: "guest" }> = {
  "machine.memory": { field: "machine.memory", unit: "bytes", on: "guest" },
};

/** `cmdline:<name>`: the kernel command line word `<name>=<value>`, after the row's own words. */
const CMDLINE_PARAM = /^cmdline:([A-Za-z0-9_.-]+)$/;

/** A guest parameter by its name in `search.param`, if it is one. */
export function guestParam(param: unknown): (SearchableParam & { on: "guest" }) | undefined {
  if (typeof param !== "string") return undefined;
  if (CMDLINE_PARAM.test(param)) return { field: param, unit: "count", on: "guest" };
  return GUEST_PARAMS[param];
}

const GUEST_PARAM_NAMES = [...Object.keys(GUEST_PARAMS), "cmdline:<word>"].join(", ");
type Problem = (at: PropertyKey[], input: unknown, message: string) => void;

/** "4K" or 4096 for a size, 12 for a count -> the number; undefined when it is not one. */
export function parseSearchValue(written: unknown, unit: SearchUnit): number | undefined {
  if (unit === "bytes") {
    if (typeof written !== "string" && typeof written !== "number") return undefined;
    const bytes = parseSize(written);
    return bytes !== undefined && Number.isSafeInteger(bytes) ? bytes : undefined;
  }
  return typeof written === "number" && Number.isSafeInteger(written) && written >= 0 ? written : undefined;
}

/** A value as the scenario would write it: "260K" for a size, "12" for a count. */
export function formatSearchValue(value: number, unit: SearchUnit): string {
  return unit === "bytes" ? formatSize(value) : String(value);
}

/** The workload's kind key and that kind's searchable parameter named by `search.param`, or why not. */
function searchedParam(workload: Record<string, unknown>, param: unknown): SearchableParam | string | undefined {
  const key = workloadKeys().find((k) => workload[k.name] !== undefined);
  if (!key) return undefined; // no kind: the workload's own check says so
  const guest = guestParam(param);
  if (guest) return guest;
  const params = "runsAs" in key ? {} : (key.searchable ?? {});
  const names = Object.keys(params);
  if (names.length === 0) {
    return `${key.name} has no searchable parameters (the guest's: ${GUEST_PARAM_NAMES})`;
  }
  if (typeof param !== "string" || !params[param]) {
    const hint = typeof param === "string" ? didYouMean(param, names) : "";
    const searchable = `${names.join(", ")}; ${GUEST_PARAM_NAMES}`;
    return `unknown parameter ${show(param)} for ${key.name}${hint} (searchable: ${searchable})`;
  }
  return params[param];
}

/** For the whole file (a superRefine): each `search:` against its workload's kind. */
export function checkParamSearches(file: unknown, ctx: z.core.$RefinementCtx<unknown>): void {
  if (!isMapping(file) || !Array.isArray(file.workloads)) return;
  file.workloads.forEach((workload, i) => {
    if (!isMapping(workload) || !isMapping(workload.search)) return;
    const problem: Problem = (at, input, message) =>
      ctx.addIssue({ code: "custom", path: ["workloads", i, "search", ...at], input, message });
    const param = searchedParam(workload, workload.search.param);
    if (typeof param === "string") problem(["param"], workload.search.param, param);
    else if (param) checkRange(workload, workload.search, param, problem);
  });
}

/** from < to, the granularity divides the range, and the kind accepts both ends. */
function checkRange(
  workload: Record<string, unknown>,
  search: Record<string, unknown>,
  param: SearchableParam,
  problem: Problem,
): void {
  const expected = param.unit === "bytes" ? "a size like 4K" : "a whole number";
  const value = (key: string) => {
    const v = parseSearchValue(search[key], param.unit);
    if (v === undefined && search[key] !== undefined)
      problem([key], search[key], `expected ${expected}, got ${show(search[key])}`);
    return v;
  };
  const [from, to, granularity] = [value("from"), value("to"), value("granularity")];
  if (from === undefined || to === undefined) return;
  const fmt = (n: number) => formatSearchValue(n, param.unit);
  if (from >= to) return problem(["to"], search.to, `must be above from (${fmt(from)}), got ${fmt(to)}`);
  if (granularity === undefined) return;
  if (granularity <= 0) return problem(["granularity"], search.granularity, "must be above 0");
  if ((to - from) % granularity !== 0) {
    const message = `must divide to - from (${fmt(to - from)}), got ${fmt(granularity)}`;
    return problem(["granularity"], search.granularity, message);
  }
  if (!guestParam(search.param)) checkEnds(workload, search, [from, to], problem);
}

/** The kind's own rules at both ends (read's blockSize within size), reported at the end that breaks them. */
function checkEnds(
  workload: Record<string, unknown>,
  search: Record<string, unknown>,
  ends: [number, number],
  problem: Problem,
): void {
  const key = workloadKeys().find((k) => workload[k.name] !== undefined)!;
  const written = workload[key.name];
  if (!isMapping(written)) return;
  (["from", "to"] as const).forEach((end, i) => {
    const parsed = key.schema.safeParse({ ...written, [String(search.param)]: ends[i] });
    const issue = parsed.success ? undefined : parsed.error.issues[0];
    if (!issue) return;
    const where = issue.path.length ? ` ${issue.path.join(".")}` : "";
    problem([end], search[end], `with ${String(search.param)} = ${show(search[end])},${where} ${issue.message}`);
  });
}

/** The validated `search:` -> the spec, with the kind's field and unit. */
export function toParamSearch(search: Written, kind: AnyWorkloadKind): ParamSearchSpec {
  const guest = guestParam(search.param);
  const param = guest ?? kind.searchable![search.param]!;
  const n = (v: unknown) => parseSearchValue(v, param.unit)!;
  return {
    param: search.param,
    field: param.field,
    unit: param.unit,
    on: guest ? "guest" : "workload",
    from: n(search.from),
    to: n(search.to),
    granularity: n(search.granularity),
    repeat: search.repeat,
  };
}
