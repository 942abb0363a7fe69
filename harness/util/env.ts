// Every environment variable vmrig, its bench and its tests read, in one place: one accessor
// each, read when called (tests and the bench set some of them for a while), with its default.
// ENVIRONMENT lists them for the README's "Environment" table; a unit test keeps both equal.
import os from "node:os";
import path from "node:path";

export interface EnvVariable {
  name: string;
  /** The default, as a user reads it. */
  default: string;
  /** Why one would set it. */
  why: string;
  /** Who reads it: vmrig itself, `npm run bench`, or the test suite. */
  reader: "vmrig" | "bench" | "tests";
}

export const ENVIRONMENT: readonly EnvVariable[] = [
  {
    name: "VMRIG_CACHE",
    default: "`$XDG_CACHE_HOME/vmrig`, else `~/.cache/vmrig`",
    why: "put Debian downloads, kernels, images and tools elsewhere (a big disk, a shared runner)",
    reader: "vmrig",
  },
  {
    name: "XDG_CACHE_HOME",
    default: "`~/.cache`",
    why: "the usual place for caches, when `VMRIG_CACHE` is not set",
    reader: "vmrig",
  },
  {
    name: "VMRIG_RESULTS",
    default: "`results/` in the repository",
    why: "keep runs, history and baselines elsewhere (a nightly host's persistent disk)",
    reader: "vmrig",
  },
  {
    name: "VMRIG_OFFLINE",
    default: "unset",
    why: "`1`: never touch the network, use only cached Debian indexes, .debs and provisioned tools",
    reader: "vmrig",
  },
  {
    name: "VMRIG_DEBIAN_MIRROR",
    default: "`http://deb.debian.org/debian`",
    why: "a closer or local Debian mirror (signatures are still checked)",
    reader: "vmrig",
  },
  {
    name: "VMRIG_ALLOW_EXPIRED_SUITES",
    default: "unset",
    why: "suites (comma-separated) whose InRelease is expected to be expired (a frozen mirror): no warning",
    reader: "vmrig",
  },
  {
    name: "VMRIG_DEBIAN_SECURITY_MIRROR",
    default: "`http://deb.debian.org/debian-security`",
    why: "the same for the `*-security` suites",
    reader: "vmrig",
  },
  {
    name: "VMRIG_DEBIAN_KEYRING",
    default: "`/usr/share/keyrings/debian-archive-keyring.gpg`",
    why: "a keyring for hosts without debian-archive-keyring, or for a private archive",
    reader: "vmrig",
  },
  {
    name: "VMRIG_VIRTIOFSD_LOG",
    default: "`info`",
    why: "virtiofsd's `--log-level` for shares that do not set `logLevel`",
    reader: "vmrig",
  },
  {
    name: "CI",
    default: "unset",
    why: "any value: plain progress lines instead of a redrawn terminal status (logs, journals)",
    reader: "vmrig",
  },
  {
    name: "VMRIG_BENCH_ROUNDS",
    default: "per benchmark (boot 5, matrix 1, others 3)",
    why: "more rounds for steadier ratios, fewer for a quick look",
    reader: "bench",
  },
  {
    name: "VMRIG_BENCH_PARALLEL",
    default: "`4`",
    why: "how many boots `bench -- boot` starts at once for its event-loop stall figure",
    reader: "bench",
  },
  {
    name: "VMRIG_KEPT_CONSOLES",
    default: "`<tmpdir>/vmrig-kept-consoles`",
    why: "where failed integration tests keep their guests' consoles",
    reader: "tests",
  },
  {
    name: "VMRIG_TEST_SCREENSHOTS",
    default: "unset",
    why: "a directory: keep the HTML report tests' chromium screenshots there",
    reader: "tests",
  },
  {
    name: "VMRIG_TEST_VERBOSE",
    default: "unset",
    why: "any value: print the bisect and kernel build tests' progress lines",
    reader: "tests",
  },
  {
    name: "VMRIG_STRESS_REPS",
    default: "`1`",
    why: "repeat the nightly parallel-load test to shake out flakiness",
    reader: "tests",
  },
];

const read = (name: string): string | undefined => {
  const v = process.env[name];
  return v === "" ? undefined : v;
};

/** $VMRIG_CACHE, absolute, when set. */
export const vmrigCacheOverride = (): string | undefined => {
  const v = read("VMRIG_CACHE");
  return v === undefined ? undefined : path.resolve(v);
};
export const xdgCacheHome = (): string => read("XDG_CACHE_HOME") ?? path.join(os.homedir(), ".cache");
/** $VMRIG_RESULTS as written, when set (the default lives with repoRoot, in util/paths.ts). */
export const resultsOverride = (): string | undefined => process.env.VMRIG_RESULTS;
export const offline = (): boolean => process.env.VMRIG_OFFLINE === "1";
export const allowExpiredSuites = (): string[] =>
  (process.env.VMRIG_ALLOW_EXPIRED_SUITES ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
export const debianMirror = (): string => process.env.VMRIG_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
export const debianSecurityMirror = (): string =>
  process.env.VMRIG_DEBIAN_SECURITY_MIRROR ?? "http://deb.debian.org/debian-security";
export const debianKeyring = (): string =>
  process.env.VMRIG_DEBIAN_KEYRING ?? "/usr/share/keyrings/debian-archive-keyring.gpg";
export const virtiofsdLogLevelDefault = (): string => process.env.VMRIG_VIRTIOFSD_LOG ?? "info";
export const plainProgress = (): boolean => Boolean(process.env.CI);
/** The directories of $PATH, in order. */
export const searchPath = (): string[] => (process.env.PATH ?? "").split(":").filter(Boolean);

export const benchRounds = (defaultRounds: number): number => Number(process.env.VMRIG_BENCH_ROUNDS ?? defaultRounds);
export const benchParallel = (): number => Number(process.env.VMRIG_BENCH_PARALLEL ?? 4);

export const keptConsolesRoot = (): string =>
  process.env.VMRIG_KEPT_CONSOLES ?? path.join(os.tmpdir(), "vmrig-kept-consoles");
export const testScreenshotsDir = (): string | undefined => process.env.VMRIG_TEST_SCREENSHOTS;
export const testVerbose = (): boolean => Boolean(process.env.VMRIG_TEST_VERBOSE);
export const stressReps = (): number => Number(process.env.VMRIG_STRESS_REPS ?? 1);
