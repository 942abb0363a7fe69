import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  capabilities,
  hostRequirements,
  installCommand,
  requirementsFor,
  setupPackages,
} from "../../harness/host/requirements.ts";
import { probePasses, requireCapabilities } from "../../harness/host/check.ts";
import { requireToolchain } from "../../harness/kernels/from-source/toolchain.ts";
import { HostError } from "../../harness/util/errors.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { withEnv } from "../helpers/env.ts";

const setupNames = (hostArch: string) => new Set(setupPackages(hostArch).map((p) => p.name));

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith(".ts")).map((e) => path.join(e.parentPath, e.name));
}

/** Package names a message in the source tells the user to install. */
function namedPackages(source: string): string[] {
  const found: string[] = [];
  // Messages, not comments.
  const code = source
    .split("\n")
    .filter((l) => !/^\s*(\/\/|\/\*|\*)/.test(l))
    .join("\n");
  const patterns = [
    /Debian package ([a-z0-9][a-z0-9.+-]+)/g,
    /apt-get install ((?:[a-z0-9][a-z0-9.+-]+ ?)+)/g,
    /install the ([a-z0-9][a-z0-9.+-]+) package/g,
    /firstExisting\(\[[^\]]*\], "([^"]+)"\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) found.push(...m[1]!.trim().split(/\s+/));
  return found.filter((p) => !p.startsWith("-"));
}

/** A directory of scripts that answer like the real tools (`--version`, compiles), except `absent`. */
async function fakeTools(absent: string[]): Promise<string> {
  const bin = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-bin-"));
  const commands = new Set(
    hostRequirements().flatMap((r) =>
      r.probe.kind === "command" ? [r.probe.argv[0]!] : r.probe.kind === "compile" ? [r.probe.compiler] : [],
    ),
  );
  for (const tool of commands) {
    if (absent.includes(tool)) continue;
    await fs.writeFile(path.join(bin, tool), `#!/bin/sh\necho "${tool} (fake) 1.0"\n`, { mode: 0o755 });
  }
  return bin;
}

describe("host requirements", () => {
  it("setup installs every package any message in harness/ tells the user to install", async () => {
    const known = new Set([...setupNames("x64"), ...setupNames("arm64")]);
    const named = new Map<string, string>();
    for (const file of await sourceFiles(path.join(repoRoot, "harness"))) {
      for (const p of namedPackages(await fs.readFile(file, "utf8"))) named.set(p, path.relative(repoRoot, file));
    }
    // The scan must see the messages it guards, or it proves nothing.
    expect(named.get("dropbear-bin")).toBeDefined();
    expect(named.get("busybox-static")).toBeDefined();
    const unknown = [...named].filter(([p]) => !known.has(p)).map(([p, file]) => `${p} (${file})`);
    expect(unknown).toEqual([]);
  });

  it("with no tool on PATH, each preflight names one apt-get command of setup's packages", async () => {
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-empty-"));
    try {
      await withEnv({ PATH: empty }, async () => {
        for (const c of capabilities) {
          const err = await requireCapabilities([c]).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err, c).toBeInstanceOf(HostError);
          const install = /Install them: (.*?) {2}\(or run/.exec((err as Error).message)?.[1];
          expect(install, (err as Error).message).toBeDefined();
          const packages = install!
            .split(" && ")
            .flatMap((cmd) => cmd.replace(/^apt-get install (-t \S+ )?/, "").split(" "));
          expect(packages.length).toBeGreaterThan(0);
          for (const p of packages) expect(setupNames(process.arch).has(p), `${c}: ${p}`).toBe(true);
        }
      });
    } finally {
      await fs.rm(empty, { recursive: true, force: true });
    }
  });

  it.skipIf(process.arch !== "x64")(
    "names a missing cross compiler with its package and the exact install command",
    async () => {
      const bin = await fakeTools(["aarch64-linux-gnu-gcc", "aarch64-linux-gnu-ld"]);
      try {
        await withEnv({ PATH: bin }, async () => {
          const err = await requireToolchain("aarch64").then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err).toBeInstanceOf(HostError);
          expect((err as Error).message).toContain(
            "Cannot build arm64 kernels: missing aarch64-linux-gnu-gcc (gcc-aarch64-linux-gnu), " +
              "aarch64-linux-gnu-ld (binutils-aarch64-linux-gnu).\n" +
              "Install them: apt-get install gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu",
          );
          const native = await requireToolchain("x86_64");
          expect(native.compilerIdentity).toBe("gcc (fake) 1.0 | ld (fake) 1.0");
        });
      } finally {
        await fs.rm(bin, { recursive: true, force: true });
      }
    },
  );

  it("checks headers by compiling, not by finding the compiler", async () => {
    const gelf = requirementsFor(["build-x86_64"]).find((r) => r.package === "libelf-dev")!;
    expect(gelf.probe.kind).toBe("compile");
    if (gelf.probe.kind !== "compile") return;
    // Setup installed libelf-dev on this host; a header nobody ships fails the same probe.
    expect(await probePasses(gelf.probe)).toBe(true);
    expect(
      await probePasses({ ...gelf.probe, source: "#include <vmrig-no-such-header.h>\nint main(void) { return 0; }" }),
    ).toBe(false);
  });

  it("takes QEMU from bookworm-backports on bookworm only", () => {
    const rows = requirementsFor(["guests-x86_64"], "x64").filter((r) =>
      ["qemu-system-x86", "cpio"].includes(r.package),
    );
    expect(installCommand(rows, "bookworm")).toBe(
      "apt-get install cpio && apt-get install -t bookworm-backports qemu-system-x86",
    );
    expect(installCommand(rows, "trixie")).toBe("apt-get install qemu-system-x86 cpio");
  });

  it("plans the cross toolchain the other way round on an arm64 host", () => {
    const arm = setupNames("arm64");
    expect(arm.has("gcc-x86-64-linux-gnu")).toBe(true);
    expect(arm.has("gcc-aarch64-linux-gnu")).toBe(false);
    expect(setupNames("x64").has("gcc-aarch64-linux-gnu")).toBe(true);
  });
});
