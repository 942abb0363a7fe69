// `npm run setup`: install what is missing on a Debian/Ubuntu host, provision virtiofsd and the
// relay, fetch the default scenario's kernels and build their guest images. Safe to run twice:
// it installs only missing packages and everything else is cached by content.
import { execa } from "execa";
import { readFile, writeFile, readdir } from "node:fs/promises";
import { existsSync } from "node:fs";
import { HostError } from "../util/errors.ts";
import { parseOsRelease } from "../host/os-release.ts";
import { setupPackages } from "../host/requirements.ts";
import { archRecord } from "../arch.ts";

export { parseOsRelease };

/** QEMU packages that come from bookworm-backports on bookworm (QEMU 10 instead of 7.2). */
const backportedPackages = () =>
  setupPackages()
    .filter((p) => p.backports)
    .map((p) => p.name);

/** Pure: which packages are not installed, from `dpkg-query -W -f='${Package} ${db:Status-Status}\n'`. */
export function missingPackages(wanted: string[], dpkgQueryOutput: string): string[] {
  const installed = new Set(
    dpkgQueryOutput
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c[1] === "installed")
      .map((c) => c[0]!.replace(/:\w+$/, "")),
  );
  return wanted.filter((p) => !installed.has(p));
}

async function installed(pkgs: string[]): Promise<string> {
  const r = await execa("dpkg-query", ["-W", "-f=${Package} ${db:Status-Status}\n", ...pkgs], { reject: false });
  return r.stdout;
}

async function qemuMajor(binary: string): Promise<number> {
  const r = await execa(binary, ["--version"], { reject: false });
  return Number(/version (\d+)\./.exec(r.stdout ?? "")?.[1] ?? 0);
}

const backportsSource = (codename: string) => `Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

/**
 * Pure: whether an apt sources file enables `suite`, as apt reads it: one-line `deb` entries in
 * sources.list files, deb822 stanzas (Suites:, Enabled: no) in .sources files; comments don't count.
 */
export function sourcesEnableSuite(text: string, suite: string, deb822: boolean): boolean {
  const lines = text.split("\n").map((l) => l.replace(/#.*/, "").trim());
  if (!deb822) return lines.some((l) => /^deb\s/.test(l) && l.replace(/\[[^\]]*\]/, "").split(/\s+/)[2] === suite);
  return text
    .split(/\n\s*\n/)
    .map((stanza) => stanza.split("\n").map((l) => l.replace(/#.*/, "").trim()))
    .some((stanza) => {
      const field = (name: string) =>
        stanza
          .find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))
          ?.slice(name.length + 1)
          .trim();
      const types = (field("Types") ?? "").split(/\s+/);
      return types.includes("deb") && field("Enabled") !== "no" && (field("Suites") ?? "").split(/\s+/).includes(suite);
    });
}

async function hasBackports(codename: string): Promise<boolean> {
  const dir = "/etc/apt/sources.list.d";
  const files = [
    "/etc/apt/sources.list",
    ...(await readdir(dir).catch(() => [] as string[])).map((f) => `${dir}/${f}`),
  ].filter((f) => f.endsWith(".list") || f.endsWith(".sources"));
  for (const f of files) {
    const t = await readFile(f, "utf8").catch(() => "");
    if (sourcesEnableSuite(t, `${codename}-backports`, f.endsWith(".sources"))) return true;
  }
  return false;
}

/** apt-get install, as a HostError that says what apt said (and what update said before it) when it fails. */
async function aptInstall(args: string[], updateProblems: string, env: Record<string, string>): Promise<void> {
  const r = await execa("apt-get", ["install", "-y", "--no-install-recommends", ...args], {
    env,
    reject: false,
    all: true,
  });
  if (r.exitCode === 0) return;
  const said = aptProblems(String(r.all)) || String(r.all).trim().split("\n").slice(-3).join(" | ");
  throw new HostError(
    `apt-get install ${args.join(" ")} failed: ${said}` +
      (updateProblems ? `\n(apt-get update had failed before it: ${updateProblems})` : ""),
  );
}

const aptProblems = (output: string) =>
  output
    .split("\n")
    .filter((l) => /^(E|W|Err):/.test(l))
    .slice(0, 3)
    .join(" | ");

export async function installHostPackages(log: (l: string) => void): Promise<void> {
  if (!existsSync("/usr/bin/dpkg-query"))
    throw new HostError(
      "vmrig setup supports Debian and Ubuntu hosts (no dpkg-query found); " +
        `install these packages by hand: ${setupPackages()
          .map((p) => p.name)
          .join(" ")}`,
    );
  const os = parseOsRelease(await readFile("/etc/os-release", "utf8"));
  const want = setupPackages().map((p) => p.name);
  const backportedQemu = backportedPackages();
  const missing = missingPackages(want, await installed(want));
  const needNewQemu =
    os.id === "debian" &&
    os.codename === "bookworm" &&
    (missing.some((p) => backportedQemu.includes(p)) ||
      (await qemuMajor(archRecord("x86_64").qemu.binary)) < 10 ||
      (await qemuMajor(archRecord("aarch64").qemu.binary)) < 10);
  if (missing.length === 0 && !needNewQemu) {
    log("host packages: all present");
    return;
  }
  const root = process.getuid?.() === 0;
  const plan = [
    missing.length ? `apt-get install ${missing.join(" ")}` : "",
    needNewQemu ? `apt-get install -t bookworm-backports ${backportedQemu.join(" ")}` : "",
  ].filter(Boolean);
  if (!root)
    throw new HostError(
      `setup needs root to install host packages; run as root or install them yourself:\n  ${plan.join("\n  ")}`,
    );
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  if (needNewQemu && !(await hasBackports("bookworm"))) {
    log("adding bookworm-backports to apt sources (QEMU 10)");
    await writeFile("/etc/apt/sources.list.d/vmrig-bookworm-backports.sources", backportsSource("bookworm"));
  }
  log("apt-get update");
  const upd = await execa("apt-get", ["update"], { reject: false, env, all: true });
  const updateProblems = upd.exitCode === 0 ? "" : aptProblems(String(upd.all)) || `exit ${upd.exitCode}`;
  if (updateProblems) log(`apt-get update failed (installing from the lists apt already has): ${updateProblems}`);
  const base = missing.filter((p) => !backportedQemu.includes(p) || !needNewQemu);
  if (base.length) {
    log(`apt-get install ${base.join(" ")}`);
    await aptInstall(base, updateProblems, env);
  }
  if (needNewQemu) {
    log(`apt-get install -t bookworm-backports ${backportedQemu.join(" ")}`);
    await aptInstall(["-t", "bookworm-backports", ...backportedQemu], updateProblems, env);
  }
}
