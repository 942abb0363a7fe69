// The clean-host check's kernel build step: vmrig's build preflight for both architectures, then
// the first real stages of a build from Debian's linux-source with the same make variables vmrig
// uses: kconfig (gcc, bison, flex), `prepare` (the cross compiler, bc, perl) and objtool (libelf).
// Minutes, not the 10 of a whole kernel, and it fails where a missing package would fail a build.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { requireToolchain } from "../../harness/kernels/build/toolchain.ts";
import { preparePristineSource } from "../../harness/kernels/build/source.ts";
import type { Arch } from "../../harness/types.ts";

const say = (l: string) => process.stderr.write(`build-step: ${l}\n`);
const signal = new AbortController().signal;

const source = await preparePristineSource({ kind: "debian", package: "linux-source-7.3" }, { signal, log: say, label: "fresh-host" });
say(`source: ${source.detail}`);
const out = await mkdtemp(path.join(os.tmpdir(), "vmrig-build-step-"));
try {
  for (const arch of ["x86_64", "aarch64"] as Arch[]) {
    const toolchain = await requireToolchain(arch);
    say(`${arch}: preflight passed (${toolchain.compilerIdentity})`);
    const dir = path.join(out, arch);
    const make = async (...targets: string[]) => {
      const started = Date.now();
      const argv = ["-C", source.tree, `O=${dir}`, `-j${os.availableParallelism()}`, ...toolchain.makeVars, ...targets];
      const r = await execa("make", argv, { reject: false, all: true, stdin: "ignore" });
      if (r.exitCode !== 0) throw new Error(`${arch}: make ${targets.join(" ")} failed:\n${String(r.all).split("\n").slice(-30).join("\n")}`);
      say(`${arch}: make ${targets.join(" ")}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
    };
    await make("tinyconfig");
    await make("prepare");
    if (arch === "x86_64") await make("tools/objtool");
  }
} finally {
  await rm(out, { recursive: true, force: true });
}
say("passed");
