// Runs the probes of harness/host/requirements.ts: the one check behind setup's report, `vmrig
// doctor` and the preflights of runs and kernel builds.
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { HostError } from "../util/errors.ts";
import { parseOsRelease } from "./os-release.ts";
import {
  capabilityTitle,
  installCommand,
  requirementsFor,
  type Capability,
  type Probe,
  type Requirement,
} from "./requirements.ts";

export async function probePasses(probe: Probe): Promise<boolean> {
  switch (probe.kind) {
    case "file":
      return probe.paths.some((p) => existsSync(p));
    case "command": {
      const r = await execa(probe.argv[0]!, probe.argv.slice(1), { reject: false, stdin: "ignore" });
      return r.exitCode === 0;
    }
    case "compile": {
      const dir = await mkdtemp(path.join(os.tmpdir(), "vmrig-probe-"));
      try {
        await writeFile(path.join(dir, "probe.c"), probe.source + "\n");
        const args = [path.join(dir, "probe.c"), "-o", path.join(dir, "probe"), ...probe.flags];
        const r = await execa(probe.compiler, args, { reject: false, stdin: "ignore" });
        return r.exitCode === 0;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
}

/** The rows of `wanted` whose probe fails on this host. */
export async function missingRequirements(wanted: Capability[]): Promise<Requirement[]> {
  const rows = requirementsFor(wanted);
  const passes = await Promise.all(rows.map((r) => probePasses(r.probe)));
  return rows.filter((_, i) => !passes[i]);
}

async function hostCodename(): Promise<string> {
  return parseOsRelease(await readFile("/etc/os-release", "utf8").catch(() => "")).codename;
}

/** "bison (bison), gelf.h (libelf-dev)": what is missing, with the package that brings it. */
export function describeMissing(missing: Requirement[]): string {
  return missing.map((r) => `${r.what} (${r.package})`).join(", ");
}

/** Throws a HostError naming what is missing and the exact command that installs it. */
export async function requireCapabilities(wanted: Capability[]): Promise<void> {
  const missing = await missingRequirements(wanted);
  if (missing.length === 0) return;
  const title = wanted.map((c) => capabilityTitle[c]).join(" and ");
  throw new HostError(
    `Cannot ${title}: missing ${describeMissing(missing)}.\n` +
      `Install them: ${installCommand(missing, await hostCodename())}  (or run \`npm run setup\`)`,
  );
}

/** One line per capability: ready, or what is missing; then the command that installs it all. */
export async function readinessReport(wanted: Capability[]): Promise<{ lines: string[]; ready: boolean }> {
  const results = await Promise.all(wanted.map(async (c) => ({ c, missing: await missingRequirements([c]) })));
  const lines = results.map(({ c, missing }) =>
    missing.length === 0
      ? `ready: ${capabilityTitle[c]}`
      : `NOT READY: ${capabilityTitle[c]}: missing ${describeMissing(missing)}`,
  );
  const missing = results.flatMap((r) => r.missing);
  if (missing.length)
    lines.push(`install what is missing: ${installCommand(missing, await hostCodename())}  (or run \`npm run setup\`)`);
  return { lines, ready: missing.length === 0 };
}
