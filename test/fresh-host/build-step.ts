// The clean-host check's arm64 build step: vmrig's build preflight, then kconfig with the cross
// compiler (conf is built with gcc, bison and flex; Kconfig probes aarch64-linux-gnu-gcc) on
// Debian's linux-source, with the make variables vmrig uses. The x86_64 step is a whole build
// of a shipped scenario's row with `vmrig kernel build` (see fresh-host.sh).
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { requireToolchain } from "../../harness/kernels/from-source/toolchain.ts";
import { preparePristineSource } from "../../harness/kernels/from-source/source.ts";

const say = (l: string) => process.stderr.write(`build-step: ${l}\n`);
const signal = new AbortController().signal;

const toolchain = await requireToolchain("aarch64");
say(`aarch64: preflight passed (${toolchain.compilerIdentity})`);
const source = await preparePristineSource(
  { kind: "debian", package: "linux-source-7.3" },
  { signal, log: say, label: "fresh-host" },
);
const out = await mkdtemp(path.join(os.tmpdir(), "vmrig-build-step-"));
try {
  const started = Date.now();
  const r = await execa("make", ["-C", source.tree, `O=${out}`, ...toolchain.makeVars, "tinyconfig"], {
    reject: false,
    all: true,
    stdin: "ignore",
  });
  if (r.exitCode !== 0)
    throw new Error(`aarch64: make tinyconfig failed:\n${String(r.all).split("\n").slice(-30).join("\n")}`);
  say(`aarch64: make tinyconfig on ${source.detail}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
} finally {
  await rm(out, { recursive: true, force: true });
}
