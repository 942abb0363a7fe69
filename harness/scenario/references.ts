// Checks that relate one part of the file to another: names that must be unique and names
// that must refer to something declared. They run on whatever parsed, even when fields are
// broken, so a single load reports every problem; hence the defensive reading of `unknown`.

import type { z } from "zod";
import { show } from "./messages.ts";
import { identifierMessage, LABEL_PATTERN } from "./rules.ts";
import { workloadKeys } from "../workloads/registry.ts";
import { isMapping } from "../workloads/fields.ts";

export { isMapping };

type Ctx = z.core.$RefinementCtx<unknown>;

const entries = (v: unknown): Array<[string, unknown]> => (isMapping(v) ? Object.entries(v) : []);
const items = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const field = (v: unknown, key: string): unknown => (isMapping(v) ? v[key] : undefined);

/** For the whole file (a superRefine). Reports only what the field checks can't see. */
export function checkReferences(file: unknown, ctx: Ctx): void {
  if (entries(file).length === 0) return;

  const tags = firstOccurrences(ctx, items(field(file, "shares")), "shares", "tag", "share tag");
  const ids = firstOccurrences(ctx, items(field(file, "workloads")), "workloads", "id", "workload id");

  const kernels = entries(field(file, "kernels"));
  if (isMapping(field(file, "kernels")) && kernels.length === 0) {
    ctx.addIssue({
      code: "custom",
      path: ["kernels"],
      input: field(file, "kernels"),
      message: "declare at least one kernel",
    });
  }
  for (const [label] of kernels) {
    if (!LABEL_PATTERN.test(label)) {
      ctx.addIssue({
        code: "custom",
        path: ["kernels", label],
        input: label,
        params: { at: "key" },
        message: identifierMessage("kernel label", LABEL_PATTERN, label),
      });
    }
  }

  items(field(file, "workloads")).forEach((workload, i) => {
    // A kind that uses a share names it in its `share` key (workloads/fields.ts shareName).
    for (const { name: kind } of workloadKeys()) {
      const share = field(field(workload, kind), "share");
      if (typeof share === "string" && share !== "" && !tags.has(share)) {
        ctx.addIssue({
          code: "custom",
          path: ["workloads", i, kind, "share"],
          input: share,
          message:
            `unknown share ${show(share)} ` +
            `(${tags.size ? `declared: ${[...tags.keys()].join(", ")}` : "no shares are declared"})`,
        });
      }
    }
  });

  for (const [label, kernel] of kernels) {
    for (const [workloadId] of entries(field(kernel, "expect"))) {
      if (!ids.has(workloadId) && !isTestCaseOf(items(field(file, "workloads")), ids, workloadId)) {
        ctx.addIssue({
          code: "custom",
          path: ["kernels", label, "expect", workloadId],
          input: workloadId,
          params: { at: "key" },
          message: `unknown workload ${show(workloadId)} (workloads: ${[...ids.keys()].join(", ") || "none"})`,
        });
      }
    }
  }
}

/** `<id>/<test>` where workload `<id>` is of a kind that reports test cases (ktap). */
function isTestCaseOf(workloads: unknown[], ids: Map<string, number>, key: string): boolean {
  const slash = key.indexOf("/");
  const at = slash > 0 && slash < key.length - 1 ? ids.get(key.slice(0, slash)) : undefined;
  if (at === undefined) return false;
  return workloadKeys().some((k) => "testCases" in k && k.testCases && field(workloads[at], k.name) !== undefined);
}

/** The first index of each name in a list; later repeats are reported. */
function firstOccurrences(
  ctx: Ctx,
  list: unknown[],
  listKey: string,
  nameKey: string,
  what: string,
): Map<string, number> {
  const seen = new Map<string, number>();
  list.forEach((item, i) => {
    const name = field(item, nameKey);
    if (typeof name !== "string") return;
    const first = seen.get(name);
    if (first === undefined) seen.set(name, i);
    else {
      ctx.addIssue({
        code: "custom",
        path: [listKey, i, nameKey],
        input: name,
        message: `duplicate ${what} ${show(name)} (first at ${listKey}[${first}])`,
      });
    }
  });
  return seen;
}
