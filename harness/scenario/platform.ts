// Architecture and page size per row. A scenario may mix rows of several architectures (arm64
// 4K/16K/64K next to x86 for contrast): `kernels.X.arch` and `kernels.X.pageSize` override
// `machine.arch` and `machine.pageSize`. The pairs that cannot exist are refused here; whether
// the running kernel really has the page size is checked inside the guest (run/guest-facts.ts).
import type { z } from "zod";
import type { Arch, KernelEntry, PageSize, Scenario } from "../types.ts";
import { ARCHES, archRecord } from "../arch.ts";
import { isMapping } from "./references.ts";
import { show } from "./messages.ts";

export { ARCHES } from "../arch.ts";
export const PAGE_SIZES = ["4K", "16K", "64K"] as const;

/** Page sizes each architecture's kernels can be built with. */
export const PAGE_SIZES_BY_ARCH = Object.fromEntries(ARCHES.map((a) => [a, archRecord(a).pageSizes])) as Record<
  Arch,
  readonly PageSize[]
>;

type Ctx = z.core.$RefinementCtx<unknown>;
const field = (v: unknown, key: string): unknown => (isMapping(v) ? v[key] : undefined);
const isArch = (v: unknown): v is Arch => (ARCHES as readonly unknown[]).includes(v);

/** For the whole file (a superRefine): each kernel's effective arch must have its effective page size. */
export function checkPlatforms(file: unknown, ctx: Ctx): void {
  const machine = field(file, "machine");
  const machineArch: Arch = isArch(field(machine, "arch")) ? (field(machine, "arch") as Arch) : "x86_64";
  const machinePage =
    typeof field(machine, "pageSize") === "string" ? (field(machine, "pageSize") as string) : undefined;
  const kernels = field(file, "kernels");
  if (!isMapping(kernels)) return;
  for (const [label, kernel] of Object.entries(kernels)) {
    const debian = field(kernel, "debian");
    if (isMapping(debian) && debian.flavour === undefined) {
      const arch = isArch(field(kernel, "arch")) ? (field(kernel, "arch") as Arch) : machineArch;
      const page = (typeof field(kernel, "pageSize") === "string" ? field(kernel, "pageSize") : machinePage) as
        PageSize | undefined;
      if ((PAGE_SIZES as readonly unknown[]).includes(page ?? "4K") && debianFlavourFor(arch, page) === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["kernels", label, "debian"],
          input: debian,
          message:
            `Debian has no ${arch} kernel with ${page} pages: name a flavour, or build one` +
            (arch === "aarch64" && page === "64K"
              ? ' (build: { source: "debian:linux-source-7.3", config: [kernels/guest-arm64-64k.config] })'
              : ""),
        });
      }
    }
    const ownArch = isArch(field(kernel, "arch")) ? (field(kernel, "arch") as Arch) : undefined;
    const ownPage = typeof field(kernel, "pageSize") === "string" ? (field(kernel, "pageSize") as string) : undefined;
    // machine.arch with machine.pageSize is the machine's own check.
    if (ownArch === undefined && ownPage === undefined) continue;
    const arch = ownArch ?? machineArch;
    const page = ownPage ?? machinePage;
    // An unknown word is the field check's to report.
    if (
      page === undefined ||
      !(PAGE_SIZES as readonly string[]).includes(page) ||
      PAGE_SIZES_BY_ARCH[arch].includes(page as PageSize)
    )
      continue;
    ctx.addIssue({
      code: "custom",
      path: ["kernels", label, ownPage !== undefined ? "pageSize" : "arch"],
      input: page,
      message:
        `${arch}${ownArch ? "" : " (machine.arch)"} only has ${PAGE_SIZES_BY_ARCH[arch].join(", ")} pages, ` +
        `got ${show(page)}${ownPage ? "" : " (machine.pageSize): give this kernel its own pageSize"}`,
    });
  }
}

/** Debian's kernel flavour for an arch and page size; undefined where Debian has none (arm64 64K). */
export function debianFlavourFor(arch: Arch, pageSize: PageSize | undefined): string | undefined {
  return archRecord(arch).debianFlavours[pageSize ?? "4K"];
}

/** The architecture a row's guest runs. */
export function kernelArch(s: Pick<Scenario, "machine">, k: Pick<KernelEntry, "arch">): Arch {
  return k.arch ?? s.machine.arch;
}

/** The page size a row's kernel must have, if the scenario says. */
export function kernelPageSize(s: Pick<Scenario, "machine">, k: Pick<KernelEntry, "pageSize">): PageSize | undefined {
  return k.pageSize ?? s.machine.pageSize;
}

/** The architectures a scenario's rows use, machine.arch first. */
export function scenarioArches(s: Pick<Scenario, "machine" | "kernels">): Arch[] {
  return [...new Set([s.machine.arch, ...s.kernels.map((k) => kernelArch(s, k))])].filter((a) =>
    s.kernels.some((k) => kernelArch(s, k) === a),
  );
}
