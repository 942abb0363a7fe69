// A kernel's `build:` entry: where the tree comes from, for which architecture, which config base
// and fragments, which patches. Checked here, with the rest of the file, so its problems come at
// load time as file:line:col like any other key; whether the files exist is checked when the
// kernel is built (kernels/from-source/spec.ts checkBuildFiles), at the lines recorded here.
//
//   build:
//     source: "debian:linux-source-7.3"        # or { git: ../linux, ref: v7.3 } or { tarball: linux.tar.xz }
//     arch: arm64                              # default: the row's arch
//     base: tinyconfig                         # or defconfig
//     config: [../kernels/guest-x86_64.config] # fragments merged over the base, in order
//     patches: [fix.patch]                     # applied with -p1, in order
import { z } from "zod";
import type { BuildSource, ConfigBase } from "../types.ts";
import { show, strict } from "../workloads/fields.ts";
import { isMapping } from "./references.ts";
import { kernelSuites } from "../debian/archive.ts";
import { ARCHES, archNamed, archRecord } from "../arch.ts";

const CONFIG_BASES = ["tinyconfig", "defconfig"] as const satisfies readonly ConfigBase[];
/** Spellings people use for each architecture (the arch records' names and aliases). */
const ARCH_SPELLINGS = ARCHES.flatMap((a) => [a, ...archRecord(a).aliases]);

const SOURCE_HELP =
  'expected "debian:linux-source-X.Y" (optionally "=<debian version>" and/or "@<suite>"), ' +
  "{ git: <repository>, ref: <branch, tag or commit> } or { tarball: <file.tar.xz> }";
const DEBIAN_SOURCE = /^debian:(linux-source-\d+\.\d+)(?:=([^@\s]+))?(?:@([a-z][a-z0-9-]*))?$/;

type Problem = (path: PropertyKey[], input: unknown, message: string) => void;

/** The three forms of `source`, told apart by their shape; each form's own keys are checked. */
function parseSource(raw: unknown, problem: Problem): BuildSource | undefined {
  if (raw === undefined) {
    problem([], raw, `missing: ${SOURCE_HELP}`);
    return undefined;
  }
  if (typeof raw === "string") {
    const m = DEBIAN_SOURCE.exec(raw);
    if (m && m[3] && !kernelSuites.includes(m[3])) {
      problem([], raw, `unknown suite ${show(m[3])} in ${show(raw)}; vmrig knows ${kernelSuites.join(", ")}`);
      return undefined;
    }
    if (m)
      return { kind: "debian", package: m[1]!, ...(m[2] ? { version: m[2] } : {}), ...(m[3] ? { suite: m[3] } : {}) };
    problem([], raw, `${show(raw)} is not a source: ${SOURCE_HELP}`);
    return undefined;
  }
  if (!isMapping(raw) || (!("git" in raw) && !("tarball" in raw))) {
    problem([], raw, `${SOURCE_HELP}, got ${show(raw)}`);
    return undefined;
  }
  let problems = 0;
  const bad: Problem = (path, input, message) => {
    problems++;
    problem(path, input, message);
  };
  if ("git" in raw) {
    for (const key of Object.keys(raw)) {
      if (key !== "git" && key !== "ref") bad([key], raw[key], "unknown key (a git source has git and ref)");
    }
    const { git, ref } = raw;
    if (typeof git !== "string" || !git) bad(["git"], git, `expected the path of a git repository, got ${show(git)}`);
    if (typeof ref !== "string" || !ref) bad(["ref"], ref, `expected a branch, tag or commit, got ${show(ref)}`);
    // git would read a leading dash as an option.
    else if (ref.startsWith("-")) bad(["ref"], ref, `${show(ref)} is not a ref`);
    return problems === 0 ? { kind: "git", repo: git as string, ref: ref as string } : undefined;
  }
  for (const key of Object.keys(raw)) {
    if (key !== "tarball") bad([key], raw[key], "unknown key (a tarball source has only tarball)");
  }
  const { tarball } = raw;
  if (typeof tarball !== "string" || !tarball) {
    bad(["tarball"], tarball, `expected the path of a .tar.xz/.tar.gz file, got ${show(tarball)}`);
  } else if (/^[a-z]+:\/\//i.test(tarball)) {
    bad(["tarball"], tarball, `${show(tarball)}: URLs are not supported; download the file and give its path`);
  }
  return problems === 0 ? { kind: "tarball", file: tarball as string } : undefined;
}

const sourceSchema = z
  .unknown()
  .transform((raw, ctx) => {
    const source = parseSource(raw, (path, input, message) =>
      ctx.issues.push({ code: "custom", path, input, message }),
    );
    return source ?? z.NEVER;
  })
  .meta({
    description: "Where the tree comes from.",
    anyOf: [
      { type: "string", pattern: DEBIAN_SOURCE.source, description: 'Debian\'s package: "debian:linux-source-7.3".' },
      {
        type: "object",
        properties: { git: { type: "string" }, ref: { type: "string" } },
        required: ["git", "ref"],
        additionalProperties: false,
        description: "A local git repository at a ref (exported, never checked out in place).",
      },
      {
        type: "object",
        properties: { tarball: { type: "string" } },
        required: ["tarball"],
        additionalProperties: false,
        description: "A local .tar(.gz|.xz|.zst|.bz2) holding one kernel tree.",
      },
    ],
  });

/**
 * A file or a list of files; paths are relative to the scenario's directory. The list's items
 * are checked after the shape, so a bad item is reported at its own index.
 */
function fileList(missing: string, nonEmpty?: string) {
  const expected = (input: unknown) => `expected a file path, got ${show(input)}`;
  const file = z
    .string({ error: (issue) => expected(issue.input) })
    .min(1, { error: (issue) => expected(issue.input) });
  const list = z.array(file);
  const written = z.union([z.string(), z.array(z.unknown()).meta({ items: { type: "string", minLength: 1 } })], {
    error: (issue) =>
      issue.input === undefined ? missing : `expected a file or a list of files, got ${show(issue.input)}`,
  });
  return written
    .transform((v) => (typeof v === "string" ? [v] : v))
    .pipe(nonEmpty ? list.min(1, { error: nonEmpty }) : list);
}

export const buildSchema = strict({
  source: sourceSchema,
  arch: z
    .string()
    .refine((a) => archNamed(a) !== undefined, {
      error: (issue) => `expected one of x86_64, aarch64 (or amd64, arm64), got ${show(issue.input)}`,
    })
    .transform((a) => archNamed(a)!)
    .optional()
    .meta({
      enum: ARCH_SPELLINGS,
      description: "The kernel's architecture (x86_64/amd64, aarch64/arm64); default: the row's arch.",
    }),
  base: z.enum(CONFIG_BASES).default("tinyconfig").meta({ description: "The config the fragments are merged over." }),
  config: fileList(
    "missing: list the config fragments to merge over the base (e.g. kernels/guest-x86_64.config)",
    "is empty: list at least one fragment (the guest image needs options tinyconfig lacks)",
  ).meta({ description: "Config fragments merged over the base, in order (later lines win); a file or a list." }),
  patches: fileList("").optional().meta({ description: "Patches applied with -p1, in order; a file or a list." }),
}).meta({ description: "A kernel built from source, cached by everything that changes the binary." });

export type WrittenBuild = z.output<typeof buildSchema>;

/** For the whole file (a superRefine): a kernel built for one architecture cannot boot in another's guest. */
export function checkBuildArch(file: unknown, ctx: z.core.$RefinementCtx<unknown>): void {
  if (!isMapping(file) || !isMapping(file.kernels)) return;
  const machineArch = isMapping(file.machine) ? file.machine.arch : undefined;
  for (const [label, kernel] of Object.entries(file.kernels)) {
    if (!isMapping(kernel) || !isMapping(kernel.build)) continue;
    // Only arches the field checks accept are compared, each spelling read as its arch.
    const built = typeof kernel.build.arch === "string" ? archNamed(kernel.build.arch) : undefined;
    const written = kernel.arch ?? machineArch ?? "x86_64";
    const rowArch = typeof written === "string" ? archNamed(written) : undefined;
    if (!built || !rowArch || built === rowArch) continue;
    const whose = kernel.arch !== undefined ? "this kernel's arch" : "the scenario's machine";
    ctx.addIssue({
      code: "custom",
      path: ["kernels", label, "build", "arch"],
      input: kernel.build.arch,
      message: `is ${built}, but ${whose} is ${rowArch}: the kernel could not boot there`,
    });
  }
}
