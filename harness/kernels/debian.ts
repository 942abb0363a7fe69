// Kernel provider for `source: {kind: debian, version, flavour, suite?}`: finds the kernel in
// Debian's archive, downloads and unpacks it once into the kernel cache.
import fs from "node:fs/promises";
import path from "node:path";
import type { KernelArtifact, KernelEntry } from "../types.ts";
import { HostError, VmrigError } from "../util/errors.ts";
import { cachePaths } from "../util/paths.ts";
import { exists } from "../util/atomic-fs.ts";
import {
  NotInArchiveError,
  type ArchiveOptions,
  debianArch,
  kernelSuites,
  loadSuiteIndexes,
} from "../debian/archive.ts";
import { provisionUnpacked, reusableEntry } from "../debian/private-program.ts";
import { type KernelCandidate, chooseKernel, kernelCandidates, kernelFlavours } from "./debian-select.ts";
import { type VersionSpec, parseVersionSpec, upstreamVersion } from "../debian/version.ts";
import type { KernelContext, KernelProvider } from "./provider-types.ts";

export const debianKernelProvider: KernelProvider = { kind: "debian", resolve: resolveDebianKernel };

type DebianSource = Extract<KernelEntry["source"], { kind: "debian" }>;

/** What an unpacked cache entry records, paths relative to its directory. */
interface KernelManifest {
  identity: string;
  package: string;
  version: string;
  suite: string;
  flavour: string;
  release: string;
  image: string;
  modulesDir?: string;
  config?: string;
  parts: Array<{ name: string; version: string; suite: string; sha256: string }>;
}

const manifestName = "vmrig-kernel.json";

export async function resolveDebianKernel(entry: KernelEntry, ctx: KernelContext): Promise<KernelArtifact> {
  const source = entry.source;
  if (source.kind !== "debian") throw new VmrigError(`Kernel "${entry.label}" is not a debian kernel.`);
  const spec = parseVersionSpec(source.version);
  if (!spec) {
    throw new VmrigError(
      `Kernel "${entry.label}": version "${source.version}" is not a Debian kernel version. ` +
        'Use "6.12" (newest 6.12.x), "6.18.15" (exactly that release) or a Debian version like "6.18.15-1~bpo13+1".',
    );
  }
  const opts: ArchiveOptions = { signal: ctx.signal, log: ctx.log };
  const candidate = await findKernel(source, spec, ctx, opts);
  try {
    return await materialise(entry, candidate, source.flavour, ctx, opts);
  } catch (e) {
    if (!(e instanceof NotInArchiveError)) throw e;
    // The cached index (up to 12 h old) named a file Debian has since removed: look again.
    ctx.log(`${e.message}: refreshing the Debian index`);
    const fresh = await findKernel(source, spec, ctx, { ...opts, forceRefresh: true });
    return materialise(entry, fresh, source.flavour, ctx, opts);
  }
}

async function findKernel(
  source: DebianSource,
  spec: VersionSpec,
  ctx: KernelContext,
  opts: ArchiveOptions,
): Promise<KernelCandidate> {
  const arch = debianArch(ctx.arch);
  const suites = source.suite ? [source.suite] : kernelSuites;
  const indexes = await loadSuiteIndexes(suites, arch, opts);
  const packages = indexes.flatMap((i) => i.packages);
  const candidates = kernelCandidates(packages, source.flavour);
  const choice = chooseKernel(candidates, spec);
  if (choice.kind === "found") return choice.candidate;

  const searched = `searched: ${suites.join(", ")} for ${arch}`;
  if (candidates.length === 0) {
    const flavours = kernelFlavours(packages);
    throw new HostError(
      `Debian has no ${source.flavour} kernels (${searched}). Flavours available: ${flavours.join(", ") || "none"}.`,
    );
  }
  const usable = candidates.filter((c) => c.missing.length === 0);
  const near = [choice.below, choice.above]
    .filter((c): c is KernelCandidate => c !== undefined)
    .map((c) => describeNear(c, usable));
  const nearest = near.length ? ` Nearest available: ${near.join(", ")}.` : "";
  const what = spec.kind === "series" ? `${spec.text}.x` : spec.text;
  if (choice.incomplete) {
    const gone = choice.incomplete.missing.join(", ");
    throw new HostError(
      `Debian kernel ${what} (${source.flavour}) is only partly left in Debian's archive: ` +
        `${gone} ${choice.incomplete.missing.length > 1 ? "are" : "is"} gone (${searched}).${nearest}`,
    );
  }
  // "No longer" only for an exact release inside the range Debian still has; a series or a
  // version beyond the newest may never have been packaged.
  const state =
    spec.kind !== "series" && choice.below && choice.above
      ? "no longer in Debian's archive"
      : "not in Debian's archive";
  throw new HostError(`Debian kernel ${what} (${source.flavour}) is ${state} (${searched}).${nearest}`);
}

/** "6.12.117 (bookworm-security, trixie-security)": every suite that has that upstream version. */
function describeNear(c: KernelCandidate, usable: readonly KernelCandidate[]): string {
  const upstream = upstreamVersion(c.image.version);
  const suites = [
    ...new Set(usable.filter((u) => upstreamVersion(u.image.version) === upstream).map((u) => u.image.suite)),
  ];
  return `${upstream} (${suites.join(", ")})`;
}

async function materialise(
  entry: KernelEntry,
  candidate: KernelCandidate,
  flavour: string,
  ctx: KernelContext,
  opts: ArchiveOptions,
): Promise<KernelArtifact> {
  const { image } = candidate;
  const dir = path.join(cachePaths.kernels(), "debian", `${image.name}_${image.version}`);
  let m = await reusableEntry<KernelManifest>(dir, manifestName, () => true, { what: "unpacked kernel", log: ctx.log });
  if (!m) {
    m = await provisionUnpacked<KernelManifest>(
      {
        dir,
        manifestName,
        packages: candidate.parts,
        describe: async ({ tree }) => ({
          identity: `debian:${image.name}=${image.version}`,
          package: image.name,
          version: image.version,
          suite: image.suite,
          flavour,
          ...(await locateKernelFiles(tree)),
          parts: candidate.parts.map((p) => ({ name: p.name, version: p.version, suite: p.suite, sha256: p.sha256 })),
        }),
      },
      opts,
    );
    ctx.log(`unpacked ${image.name} ${image.version} into ${dir}`);
  }
  if (!m.config && candidate.missingOptional.length) {
    ctx.log(`no kernel config: ${candidate.missingOptional.join(", ")} is gone from Debian's archive`);
  }
  return {
    label: entry.label,
    arch: ctx.arch,
    image: path.join(dir, m.image),
    release: m.release,
    modulesDir: m.modulesDir ? path.join(dir, m.modulesDir) : undefined,
    config: m.config ? path.join(dir, m.config) : undefined,
    description: `Debian ${m.version} ${m.flavour} (${m.suite})`,
    identity: m.identity,
  };
}

/**
 * The kernel image, module tree and config inside an unpacked package tree. Older packages
 * use /boot and /lib/modules; trixie-era ones /usr/lib/modules; the split 6.19+ packages put
 * the kernel itself at /usr/lib/modules/<release>/vmlinuz and the config beside it.
 */
export async function locateKernelFiles(
  root: string,
): Promise<Pick<KernelManifest, "release" | "image" | "modulesDir" | "config">> {
  const images: Array<{ image: string; release: string }> = [];
  for (const name of await fs.readdir(path.join(root, "boot")).catch(() => [] as string[])) {
    const m = /^vmlinu[xz]-(.+)$/.exec(name);
    if (m && !name.endsWith(".old")) images.push({ image: `boot/${name}`, release: m[1]! });
  }
  for (const modules of ["lib/modules", "usr/lib/modules"]) {
    for (const release of await fs.readdir(path.join(root, modules)).catch(() => [] as string[])) {
      const image = `${modules}/${release}/vmlinuz`;
      if (await exists(path.join(root, image))) images.push({ image, release });
    }
  }
  if (images.length !== 1) {
    const found = images.length ? images.map((i) => i.image).join(", ") : "none";
    throw new HostError(
      "Expected one kernel image (boot/vmlinuz-* or usr/lib/modules/*/vmlinuz) " +
        `in the unpacked Debian kernel at ${root}, found ${found}.`,
    );
  }
  const { image, release } = images[0]!;
  const firstExisting = async (candidates: string[]) => {
    for (const c of candidates) if (await exists(path.join(root, c))) return c;
    return undefined;
  };
  const modulesDir = await firstExisting([`lib/modules/${release}`, `usr/lib/modules/${release}`]);
  const config = await firstExisting([
    `boot/config-${release}`,
    `usr/lib/modules/${release}/config`,
    `lib/modules/${release}/config`,
  ]);
  return { release, image, modulesDir, config };
}
