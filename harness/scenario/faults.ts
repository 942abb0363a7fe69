// `faults:` in a scenario file: planned faults, each timed against one workload's command.
//
//   faults:
//     - { during: ls-share, after: 3s, action: virtiofsd-stop, share: share }
//     - { during: ls-share, after: 12s, action: virtiofsd-cont, share: share }
//
// `after` is wall-clock time from the moment the workload's command was sent (seconds, or
// "500ms"/"2s"/"1m"); it is not scaled for TCG, since the point is where in the workload the
// fault lands. A fault must fire before the step's deadline (the unscaled `timeouts.step`).
// Field checks are here; the cross-references (workload, share, order) run with the file's.
import { z } from "zod";
import type { FaultAction } from "../types.ts";
import { didYouMean, show } from "./messages.ts";
import { durationSchema, isMapping, parseDuration } from "../workloads/fields.ts";

export { parseDuration };

export const FAULT_ACTIONS = [
  "virtiofsd-stop",
  "virtiofsd-cont",
  "virtiofsd-kill",
  "virtiofsd-restart",
  "guest-sysrq-crash",
  "network-cut",
] as const satisfies readonly FaultAction[];

/** Actions that hit one share's virtiofsd and so need `share`. */
export const SHARE_ACTIONS: readonly FaultAction[] = [
  "virtiofsd-stop",
  "virtiofsd-cont",
  "virtiofsd-kill",
  "virtiofsd-restart",
];

const duration = durationSchema().meta({
  description: 'Wall-clock time after the workload\'s command started: "2s", "500ms", or seconds as a number.',
});

export const faultSchema = z
  .strictObject(
    {
      during: z.string().min(1).meta({ description: "The id of the workload the fault is timed against." }),
      after: duration,
      action: z
        .string()
        .refine((a) => (FAULT_ACTIONS as readonly string[]).includes(a), {
          error: (issue) =>
            `unknown fault action ${show(issue.input)}${didYouMean(String(issue.input), FAULT_ACTIONS)} ` +
            `(known: ${FAULT_ACTIONS.join(", ")})`,
        })
        .meta({ enum: [...FAULT_ACTIONS] }),
      share: z
        .string()
        .min(1)
        .optional()
        .meta({ description: "The share tag whose virtiofsd a virtiofsd-* action hits." }),
    },
    {
      error: (issue) =>
        issue.code === "unrecognized_keys" ? "unknown key (known: during, after, action, share)" : undefined,
    },
  )
  .meta({
    description:
      "A planned fault: SIGSTOP/SIGCONT/SIGKILL/restart of a share's virtiofsd, a guest sysrq crash, " +
      "or cutting the SSH forward.",
  });

type Ctx = z.core.$RefinementCtx<unknown>;

/**
 * For the whole file: each fault names a declared workload and (for virtiofsd-*) a declared
 * share, fires inside the step's deadline, and a `virtiofsd-cont` follows a stop.
 */
export function checkFaultReferences(file: unknown, ctx: Ctx): void {
  if (!isMapping(file) || !Array.isArray(file.faults)) return;
  const workloads = declaredNames(file.workloads, "id");
  const shares = declaredNames(file.shares, "tag");
  const stepSeconds = stepDeadlineSeconds(file);
  const issue: Issue = (i, key, input, message) =>
    ctx.addIssue({ code: "custom", path: ["faults", i, key], input, message });

  const stopped = new Map<string, number>(); // "workload\0share" -> ms of the stop
  for (const { f, i, ms } of inFiringOrder(file.faults)) {
    if (!isMapping(f)) continue;
    checkWorkload(f, i, workloads, issue);
    checkShare(f, i, shares, issue);
    checkDeadline(f, i, ms, stepSeconds, issue);
    checkContFollowsStop(f, i, ms, stopped, issue);
  }
}

type Issue = (i: number, key: string, input: unknown, message: string) => void;
type Fault = Record<string, unknown>;

/** The string `key` of each mapping in `list` (a workload's id, a share's tag); anything else is skipped. */
export const declaredNames = (list: unknown, key: string): Set<string> =>
  new Set(
    (Array.isArray(list) ? list : [])
      .map((x) => (isMapping(x) ? x[key] : undefined))
      .filter((x): x is string => typeof x === "string"),
  );

/**
 * Faults with their index in the file and their `after` in ms, earliest first (an unreadable
 * `after` counts as 0), so a stop is seen before the cont that undoes it.
 */
export const inFiringOrder = (faults: unknown[]): Array<{ f: unknown; i: number; ms: number | undefined }> =>
  faults
    // This runs on the parsed file: a valid `after` is already milliseconds; a broken one is as written.
    .map((f: unknown, i) => {
      const ms = !isMapping(f) ? undefined : typeof f.after === "number" ? f.after : parseDuration(f.after);
      return { f, i, ms };
    })
    .sort((a, b) => (a.ms ?? 0) - (b.ms ?? 0));

function checkWorkload(f: Fault, i: number, workloads: Set<string>, issue: Issue): void {
  const { during } = f;
  if (typeof during === "string" && during && !workloads.has(during)) {
    issue(
      i,
      "during",
      during,
      `unknown workload ${show(during)}${didYouMean(during, workloads)} ` +
        `(workloads: ${[...workloads].join(", ") || "none"})`,
    );
  }
}

/** virtiofsd-* actions need a declared share; the others take none. */
function checkShare(f: Fault, i: number, shares: Set<string>, issue: Issue): void {
  const { action, share } = f;
  const needsShare = typeof action === "string" && (SHARE_ACTIONS as readonly string[]).includes(action);
  if (needsShare && share === undefined) {
    issue(
      i,
      "action",
      action,
      `${action} needs share: the tag of the share whose virtiofsd it hits ` +
        `(${shares.size ? `declared: ${[...shares].join(", ")}` : "no shares are declared"})`,
    );
  } else if (needsShare && typeof share === "string" && !shares.has(share)) {
    issue(
      i,
      "share",
      share,
      `unknown share ${show(share)} ` +
        `(${shares.size ? `declared: ${[...shares].join(", ")}` : "no shares are declared"})`,
    );
  } else if (
    !needsShare &&
    share !== undefined &&
    typeof action === "string" &&
    (FAULT_ACTIONS as readonly string[]).includes(action)
  ) {
    issue(i, "share", share, `${action} does not take a share (only ${SHARE_ACTIONS.join(", ")} do)`);
  }
}

function checkDeadline(f: Fault, i: number, ms: number | undefined, stepSeconds: number, issue: Issue): void {
  if (ms !== undefined && ms >= stepSeconds * 1000) {
    issue(
      i,
      "after",
      f.after,
      `fires at ${ms / 1000} s, but the step's deadline is timeouts.step = ${stepSeconds} s: ` +
        "the fault would land after the workload gave up",
    );
  }
}

/** Tracks stops per workload and share (in firing order) so a cont with nothing to undo is caught. */
function checkContFollowsStop(
  f: Fault,
  i: number,
  ms: number | undefined,
  stopped: Map<string, number>,
  issue: Issue,
): void {
  const { during, action, share } = f;
  if (typeof during !== "string" || typeof share !== "string" || ms === undefined) return;
  const key = `${during}\0${share}`;
  if (action === "virtiofsd-stop") stopped.set(key, ms);
  if (action === "virtiofsd-cont") {
    if (!stopped.has(key))
      issue(
        i,
        "action",
        action,
        `virtiofsd-cont of share ${show(share)} during ${show(during)} has no earlier virtiofsd-stop to undo`,
      );
    stopped.delete(key);
  }
}

/** The unscaled step deadline a wall-clock time must stay under (the schema's default when unset). */
export const stepDeadlineSeconds = (file: Record<string, unknown>): number =>
  isMapping(file.timeouts) && typeof file.timeouts.step === "number" ? file.timeouts.step : 120;
