// The scenario file as a user writes it. Every object is strict so a misspelt key is an error,
// not a silently ignored setting. Field checks live next to the fields; checks that relate
// fields to each other are in references.ts.

import { z } from "zod";
import type { ExpectationWord } from "../types.ts";
import { canonicalErrnoName, knownErrnoNames } from "../util/errno.ts";
import { didYouMean, show } from "./messages.ts";
import { checkReferences, isMapping } from "./references.ts";
import { checkFaultReferences, faultSchema, stepDeadlineSeconds } from "./faults.ts";
import { ARCHES, checkPlatforms, PAGE_SIZES } from "./platform.ts";
import { checkVfio, memorySchema, vfioSchema } from "./vfio.ts";
import { buildSchema, checkBuildArch } from "./build.ts";
import { checkParamSearches, searchSchema } from "./param-search.ts";
import { size, strict } from "../workloads/fields.ts";
import { hostLimits, VCPUS_PER_CORE } from "../util/host-limits.ts";
import { kernelSuites } from "../debian/archive.ts";
import { formatSize } from "../util/size.ts";
import { registryGeneration, workloadKeys } from "../workloads/registry.ts";
import {
  EXPECTATION_PATTERN,
  ID_PATTERN,
  identifierMessage,
  KERNEL_SOURCES,
  LABEL_PATTERN,
  OUTCOME_WORDS,
  QUEUE_SIZE_MAX,
  SHARE_TAG_MAX_BYTES,
} from "./rules.ts";

function identifier(what: string, pattern: RegExp) {
  return z.string().regex(pattern, { error: (issue) => identifierMessage(what, pattern, issue.input) });
}

const words = `${OUTCOME_WORDS.join(", ")} or an errno name like ENOMEM`;

/** "ENOMEM" and "-ENOMEM" -> "ENOMEM"; "EWOULDBLOCK" -> "EAGAIN"; outcome words as they are. */
function normaliseWord(word: string): ExpectationWord | undefined {
  if ((OUTCOME_WORDS as readonly string[]).includes(word)) return word as ExpectationWord;
  return canonicalErrnoName(word.replace(/^-/, "")) as ExpectationWord | undefined;
}

/** One word or a list meaning any of them; errno names must be Linux's. */
function expectation() {
  const word = z
    .string()
    .regex(EXPECTATION_PATTERN, { error: (issue) => `expected ${words}, got ${show(issue.input)}` })
    // Only words the pattern let through are errno-shaped; the pattern already reported the rest.
    .refine((w) => !EXPECTATION_PATTERN.test(w) || normaliseWord(w) !== undefined, {
      error: (issue) =>
        `unknown errno name ${show(issue.input)}` +
        `${didYouMean(String(issue.input).replace(/^-/, ""), knownErrnoNames())}`,
    });
  return z
    .union([word, z.array(word).min(1)], {
      error: (issue) => `expected ${words} (or a list of them), got ${show(issue.input)}`,
    })
    .transform((written) => (typeof written === "string" ? [written] : written).map((w) => normaliseWord(w)!))
    .meta({ description: `${words}; or a list meaning any of them.` });
}

/** For editors: JSON Schema's spelling of "exactly one of these keys" (the loader checks it itself). */
const oneKeyOf = (keys: readonly string[]) => ({ oneOf: keys.map((k) => ({ required: [k] })) });

/** For a superRefine that runs with `always`: the object may be malformed, so read it as unknown. */
function exactlyOneOf(keys: readonly string[], what: string) {
  return (value: unknown, ctx: z.core.$RefinementCtx<unknown>) => {
    if (!isMapping(value)) return;
    const present = keys.filter((k) => value[k] !== undefined);
    if (present.length === 1) return;
    ctx.addIssue({
      code: "custom",
      input: value,
      message:
        present.length === 0
          ? `needs a ${what}: one of ${keys.join(", ")}`
          : `has ${present.join(" and ")}; give exactly one ${what} (${keys.join(", ")})`,
    });
  };
}
/** Run a refinement even when fields inside failed, so every problem is reported in one load. */
const always = { when: () => true };

/** A suite goes into archive URLs and cache paths: only the ones vmrig's archive client knows. */
function suiteName() {
  return z.enum(kernelSuites as [string, ...string[]], {
    error: (i) => `unknown suite ${show(i.input)}; vmrig knows ${kernelSuites.join(", ")}`,
  });
}

// ---- machine, timeouts ---------------------------------------------------------------------

/** Below this no kernel vmrig boots gets to its init; above the host's RAM QEMU cannot allocate it. */
const MIN_GUEST_MEMORY = 64 * 2 ** 20;
function guestMemory() {
  return size().superRefine((bytes, ctx) => {
    const host = hostLimits().memoryBytes;
    if (bytes < MIN_GUEST_MEMORY) ctx.addIssue({ code: "custom", message: `at least 64M, got ${formatSize(bytes)}` });
    else if (bytes > host)
      ctx.addIssue({ code: "custom", message: `${formatSize(bytes)} is more than this host's ${formatSize(host)}` });
  });
}

function vcpus() {
  return z
    .number()
    .int()
    .positive()
    .superRefine((n, ctx) => {
      const most = hostLimits().cores * VCPUS_PER_CORE;
      if (n > most) {
        const why = `${VCPUS_PER_CORE} per core of this host's ${hostLimits().cores}`;
        ctx.addIssue({ code: "custom", message: `at most ${most} (${why}), got ${n}` });
      }
    });
}

/** virtiofsd's thread pool: more threads than this only exhaust the host. */
const MAX_THREAD_POOL = 1024;

/**
 * Words vmrig's guest protocol owns: a scenario that set them would break or impersonate it.
 * `rdinit=` stays allowed: replacing the initramfs's init is how to make a guest that never lets vmrig in.
 */
const OWN_CMDLINE_WORDS = /^(vmrig\.[^=]*|init)(=|$)/;

/** One kernel parameter per entry: no spaces (outside quotes) or control characters, none of vmrig's own. */
export function cmdlineWordProblem(word: string): string | undefined {
  if (word === "") return "is empty";
  if ([...word].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f))
    return `${show(word)} holds a control character`;
  if (/\s/.test(word.replace(/"[^"]*"/g, ""))) return `${show(word)} is more than one parameter: give one per entry`;
  const own = OWN_CMDLINE_WORDS.exec(word);
  if (own) return `${show(own[1])} is vmrig's own parameter (it boots the guest with it)`;
  return undefined;
}

const cmdlineWords = () =>
  z
    .array(
      z.string().superRefine((w, ctx) => {
        const problem = cmdlineWordProblem(w);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      }),
    )
    .default([]);

const machineSchema = strict({
  arch: z.enum(["x86_64", "aarch64"]).default("x86_64"),
  memory: guestMemory().prefault("1G"),
  cpus: vcpus().default(2),
  accel: z.enum(["auto", "kvm", "tcg"]).default("auto"),
  cmdline: cmdlineWords().meta({ description: "Extra kernel command line words, e.g. [swiotlb=force]." }),
  pageSize: z.enum(["4K", "16K", "64K"]).optional(),
  tcgPageZeroing: z
    .boolean()
    .default(true)
    .meta({
      description:
        "Under TCG vmrig adds init_on_alloc=1 (else code run from a share can be stale); false leaves it to the " +
        "kernel's config, to ask whether that config zeroes pages.",
    }),
}).superRefine((machine, ctx) => {
  // x86_64 has one base page size; asking for another is a mistake, not a request.
  if (machine.arch === "x86_64" && machine.pageSize !== undefined && machine.pageSize !== "4K") {
    ctx.addIssue({
      code: "custom",
      path: ["pageSize"],
      input: machine.pageSize,
      message: `x86_64 only has 4K pages, got ${show(machine.pageSize)}`,
    });
  }
});

// Timers hold 2^31-1 ms; a day, scaled for the slowest accelerator, stays well inside that.
const MAX_TIMEOUT_SECONDS = 86_400;
const seconds = (fallback: number) =>
  z
    .number()
    .positive()
    .max(MAX_TIMEOUT_SECONDS, { error: (i) => `at most ${MAX_TIMEOUT_SECONDS} seconds (a day), got ${show(i.input)}` })
    .default(fallback);
const timeoutsSchema = strict({
  boot: seconds(60),
  step: seconds(120),
  liveness: seconds(15),
}).meta({ description: "Seconds under KVM; vmrig scales them for slower accelerators." });

// ---- kernels -------------------------------------------------------------------------------

const debianSchema = strict({
  // An unquoted 6.10 is the number 6.1 to YAML; refuse numbers rather than guess.
  version: z.string({
    error: (issue) =>
      typeof issue.input === "number"
        ? `expected a quoted string like "6.18.15", got the number ${issue.input} (YAML reads an unquoted 6.10 as 6.1)`
        : undefined,
  }),
  flavour: z.string().optional().meta({
    description:
      "Debian's kernel flavour; default from the row's arch and pageSize: cloud-amd64, arm64 (4K), arm64-16k (16K).",
  }),
  suite: suiteName().optional(),
});

const qemuSchema = strict({
  debian: z
    .string({
      error: (issue) =>
        typeof issue.input === "number"
          ? `expected a quoted string like "11.1", got the number ${issue.input}`
          : undefined,
    })
    .meta({
      description:
        'A QEMU from Debian\'s archive: "11.1" = newest 11.1.x, "11.1.3", or a Debian version; ' +
        "unpacked privately, nothing installed.",
    }),
  suite: suiteName()
    .optional()
    .meta({ description: "Only this suite (e.g. trixie-backports); default: every suite vmrig searches for kernels." }),
}).meta({
  description:
    "The QEMU this row runs (for vfio.nested: the level-2 QEMU), so QEMU builds can be rows as well as kernels; " +
    "default: the host's.",
});

const pathSchema = strict({
  kernel: z.string().min(1),
  modules: z.string().min(1).optional(),
  config: z.string().min(1).optional(),
});

const kernelSchema = strict({
  debian: debianSchema.optional(),
  path: pathSchema.optional(),
  build: buildSchema.optional(),
  cmdline: cmdlineWords(),
  expect: z.record(z.string(), expectation()).default({}),
  arch: z.enum(ARCHES).optional().meta({
    description: "This row's guest architecture; default machine.arch (a scenario may mix arm64 and x86 rows).",
  }),
  pageSize: z
    .enum(PAGE_SIZES)
    .optional()
    .meta({ description: "The page size this kernel must run with (checked in the guest); default machine.pageSize." }),
  qemu: qemuSchema.optional(),
})
  .superRefine(exactlyOneOf(KERNEL_SOURCES, "kernel source"), always)
  .meta(oneKeyOf(KERNEL_SOURCES));

// ---- shares --------------------------------------------------------------------------------

const queueSizes = Array.from({ length: Math.log2(QUEUE_SIZE_MAX) + 1 }, (_, i) => 2 ** i);
const queueSize = z
  .number()
  .int()
  .refine((n) => queueSizes.includes(n), {
    error: (issue) =>
      `must be a power of two no larger than ${QUEUE_SIZE_MAX} (QEMU vhost-user-fs queue-size), ` +
      `got ${show(issue.input)}`,
  })
  .meta({
    enum: queueSizes,
    description: "Virtqueue size: a power of two up to 1024, as QEMU's vhost-user-fs requires.",
  });

/** virtiofsd options that say what the guest reaches and how virtiofsd is confined: vmrig sets them. */
const VIRTIOFSD_OWN_OPTIONS = [
  "--shared-dir",
  "-o",
  "--socket-path",
  "--fd",
  "--socket-group",
  "--sandbox",
  "--seccomp",
];
const VIRTIOFSD_OWN_WHY =
  "it says what the guest may reach on the host or how virtiofsd is confined (use the share's own keys)";

const shareSchema = strict({
  tag: identifier("share tag", ID_PATTERN).refine((tag) => Buffer.byteLength(tag) <= SHARE_TAG_MAX_BYTES, {
    error: (issue) =>
      `must be at most ${SHARE_TAG_MAX_BYTES} bytes (the virtio-fs config tag field), ` +
      `got ${Buffer.byteLength(String(issue.input))}`,
  }),
  cache: z.enum(["auto", "always", "never", "metadata"]).default("auto"),
  queueSize: queueSize.default(128),
  sandbox: z
    .enum(["auto", "none", "namespace", "chroot"])
    .default("auto")
    .meta({
      description:
        "virtiofsd --sandbox. auto: chroot into the shared directory when vmrig runs as root, else none. " +
        "namespace also confines it but forks, so a planned fault on virtiofsd would reach the wrong process.",
    }),
  threadPoolSize: z.number().int().nonnegative().max(MAX_THREAD_POOL).optional(),
  extraArgs: z
    .array(
      z.string().superRefine((arg, ctx) => {
        const owned = VIRTIOFSD_OWN_OPTIONS.find((o) => arg === o || arg.startsWith(`${o}=`));
        if (owned) ctx.addIssue({ code: "custom", message: `${owned} is vmrig's: ${VIRTIOFSD_OWN_WHY}` });
      }),
    )
    .default([])
    .meta({ description: "Extra virtiofsd arguments, passed as written (not the ones that say what is shared)." }),
  accessPlatform: z
    .boolean()
    .default(false)
    .meta({ description: "Offer VIRTIO_F_ACCESS_PLATFORM through the vhost-user relay." }),
  log: z.enum(["error", "warn", "info", "debug", "trace"]).optional().meta({
    description: "virtiofsd --log-level for this share; debug also records the requests virtiofsd refused, per cell.",
  }),
});

// ---- workloads -----------------------------------------------------------------------------

/** A workload: its id and exactly one kind's key, for every kind registered (workloads/registry.ts). */
function workloadSchema() {
  const names = workloadKeys().map((k) => k.name);
  const kinds = Object.fromEntries(workloadKeys().map((k) => [k.name, k.schema.optional()]));
  return strict({ id: identifier("workload id", ID_PATTERN), ...kinds, search: searchSchema.optional() })
    .superRefine(exactlyOneOf(names, "workload kind"), always)
    .meta(oneKeyOf(names));
}

/** For the whole file: each kind's checks against the rest of the file (a limit, a section it needs). */
function checkWorkloadsInFile(file: unknown, ctx: z.core.$RefinementCtx<unknown>): void {
  if (!isMapping(file) || !Array.isArray(file.workloads)) return;
  const stepSeconds = stepDeadlineSeconds(file);
  file.workloads.forEach((workload, i) => {
    for (const key of workloadKeys()) {
      const written = isMapping(workload) ? workload[key.name] : undefined;
      if (written === undefined || !("checkInFile" in key) || !key.checkInFile) continue;
      key.checkInFile({
        written,
        file,
        stepSeconds,
        problem: (path, input, message) =>
          ctx.addIssue({ code: "custom", path: ["workloads", i, key.name, ...path], input, message }),
      });
    }
  });
}

// ---- the file ------------------------------------------------------------------------------

function buildScenarioFileSchema() {
  return strict({
    name: identifier("scenario name", ID_PATTERN).meta({ description: "Names the run and its results directory." }),
    description: z.string().optional(),
    machine: machineSchema.prefault({}),
    timeouts: timeoutsSchema.prefault({}),
    // Labels are checked with the references, so a bad label doesn't hide problems in its entry.
    kernels: z.record(z.string(), kernelSchema).meta({
      minProperties: 1,
      propertyNames: { pattern: LABEL_PATTERN.source },
      description: "Label -> kernel; the order here is the row order of the table.",
    }),
    shares: z.array(shareSchema).default([]),
    workloads: z.array(workloadSchema()).min(1, { error: "declare at least one workload" }),
    expect: strict({ default: expectation().prefault("PASS") }).prefault({}),
    faults: z.array(faultSchema).default([]),
    memory: memorySchema.optional(),
    vfio: vfioSchema.optional(),
  })
    .superRefine(checkReferences, always)
    .superRefine(checkFaultReferences, always)
    .superRefine(checkWorkloadsInFile, always)
    .superRefine(checkParamSearches, always)
    .superRefine(checkPlatforms, always)
    .superRefine(checkBuildArch, always)
    .superRefine(checkVfio, always)
    .meta({ title: "vmrig scenario" });
}

let built: { generation: number; schema: ReturnType<typeof buildScenarioFileSchema> } | undefined;

/** The scenario file's schema, with every workload kind registered so far. */
export function scenarioFileSchema(): ReturnType<typeof buildScenarioFileSchema> {
  const generation = registryGeneration();
  if (built?.generation !== generation) built = { generation, schema: buildScenarioFileSchema() };
  return built.schema;
}

export type ScenarioFile = z.output<ReturnType<typeof buildScenarioFileSchema>>;
