import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  affectsKconfig,
  definedSymbols,
  forgetConfig,
  kconfigSignature,
  recordConfig,
  reusableConfig,
  formatUnstuck,
  fragmentRequests,
  optionsThatDidNotStick,
  parseConfig,
} from "../../harness/kernels/from-source/config.ts";
import { parseScenario } from "../../harness/scenario/load.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const fixtures = path.join(repoRoot, "test", "fixtures", "kernel-build");
const read = (name: string) => fs.readFile(path.join(fixtures, name), "utf8");

describe("the options that did not stick", () => {
  it("parses a real .config: values, 'is not set', and nothing for options Kconfig hid", async () => {
    const config = parseConfig(await read("config-7.3-x86_64.excerpt"));
    expect(config.get("CONFIG_FUSE_FS")).toBe("y");
    expect(config.get("CONFIG_MODULES")).toBe("n");
    expect(config.get("CONFIG_NR_CPUS")).toBe("2");
    expect(config.get("CONFIG_LOCALVERSION")).toBe('""');
    expect(config.get("CONFIG_CC_VERSION_TEXT")).toBe('"gcc (Debian 12.2.0-14+deb12u1) 12.2.0"');
    expect(config.has("CONFIG_PVPANIC_MMIO")).toBe(false); // depends on ACPI || OF: not even listed
  });

  it("lists each option a fragment set that the final .config does not honour, later fragments winning", async () => {
    const fragments = [
      { file: path.join(fixtures, "fragment-a.config"), text: await read("fragment-a.config") },
      { file: path.join(fixtures, "fragment-b.config"), text: await read("fragment-b.config") },
    ];
    const requests = fragmentRequests(fragments);
    expect(requests.get("CONFIG_OVERLAY_FS")).toMatchObject({ value: "y", line: 2 }); // b overrides a's =m
    expect(requests.get("CONFIG_SWIOTLB")).toMatchObject({ value: "n", line: 11 });

    const unstuck = optionsThatDidNotStick(requests, parseConfig(await read("config-7.3-x86_64.excerpt")));
    expect(unstuck.map((u) => [u.option, u.value, u.got])).toEqual([
      ["CONFIG_PROC_SYSCTL", "y", undefined], // renamed to SYSCTL in 7.x
      ["CONFIG_PVPANIC_MMIO", "y", undefined], // dependencies not met
      ["CONFIG_NR_CPUS", "8", "2"],
      ["CONFIG_SWIOTLB", "n", "y"], // selected by x86_64: cannot be turned off
      ["CONFIG_CUSE", "y", "n"], // fragment-b's line 3
    ]);
    // Asked "not set" and absent, or "not set" and "is not set": both honoured.
    expect(unstuck.some((u) => u.option === "CONFIG_PROC_KCORE" || u.option === "CONFIG_BLOCK")).toBe(false);
  });

  it("says which options no Kconfig defines, and which merely did not get their dependencies", async () => {
    const tree = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-kconfig-"));
    try {
      await fs.mkdir(path.join(tree, "fs", "proc"), { recursive: true });
      await fs.writeFile(
        path.join(tree, "fs", "proc", "Kconfig"),
        'config PROC_FS\n\tbool "proc"\n\nconfig SYSCTL\n\tbool "sysctl"\n',
      );
      await fs.mkdir(path.join(tree, "drivers", "misc", "pvpanic"), { recursive: true });
      await fs.writeFile(
        path.join(tree, "drivers", "misc", "pvpanic", "Kconfig"),
        "menuconfig PVPANIC\n\tbool\n\nconfig PVPANIC_MMIO\n\tdepends on ACPI || OF\n",
      );
      const defined = await definedSymbols(tree, [
        "CONFIG_PROC_SYSCTL",
        "CONFIG_PVPANIC_MMIO",
        "CONFIG_PVPANIC",
        "CONFIG_SYSCTL",
      ]);
      expect([...defined].sort()).toEqual(["CONFIG_PVPANIC", "CONFIG_PVPANIC_MMIO", "CONFIG_SYSCTL"]);

      const unstuck = optionsThatDidNotStick(
        fragmentRequests([
          {
            file: "/k/guest.config",
            text: "CONFIG_PROC_SYSCTL=y\nCONFIG_PVPANIC_MMIO=y\n# CONFIG_SWIOTLB is not set\n",
          },
        ]),
        parseConfig("CONFIG_SWIOTLB=y\n"),
      );
      expect(formatUnstuck({ label: "stock" }, ["/k/guest.config"], unstuck, defined, "/out/.config")).toBe(
        [
          'Kernel "stock": build.config[0]: 3 config options from the fragments did not stick after olddefconfig ' +
            "(final config: /out/.config):",
          "  CONFIG_PROC_SYSCTL =y (guest.config:1): .config has it absent; " +
            "no Kconfig in this tree defines it (renamed or removed?)",
          "  CONFIG_PVPANIC_MMIO =y (guest.config:2): .config has it absent; " +
            "its dependencies are not met (or a choice or another option overrides it)",
          "  CONFIG_SWIOTLB not set (guest.config:3): .config has it =y; " +
            "no Kconfig in this tree defines it (renamed or removed?)",
        ].join("\n"),
      );
    } finally {
      await fs.rm(tree, { recursive: true, force: true });
    }
  });

  it("from a scenario file: at the fragment that asked for the options, or at config when several did", () => {
    const yaml = [
      "name: t",
      "kernels:",
      "  stock:",
      "    build:",
      '      source: "debian:linux-source-7.3"',
      "      config:",
      "        - a.config",
      "        - b.config",
      "workloads: [{ id: w, shell: { command: x } }]",
      "",
    ].join("\n");
    const kernel = parseScenario(yaml, "/s/scenario.yaml").kernels[0]!;
    if (kernel.source.kind !== "build") throw new Error("expected a build kernel");
    const { spec } = kernel.source;
    const unstuck = optionsThatDidNotStick(
      fragmentRequests([
        { file: "/s/a.config", text: "CONFIG_FUSE_FS=y\n" },
        { file: "/s/b.config", text: "CONFIG_CUSE=y\n" },
      ]),
      parseConfig("CONFIG_FUSE_FS=y\n"),
    );
    const firstLine = (u: typeof unstuck) =>
      formatUnstuck(spec, spec.fragments, u, new Set(["CONFIG_CUSE", "CONFIG_VIRTIO_FS"]), "/out/.config").split(
        "\n",
      )[0];
    expect(firstLine(unstuck)).toBe(
      "/s/scenario.yaml:8:11 kernels.stock.build.config[1]: 1 config option from the fragments did not stick " +
        "after olddefconfig (final config: /out/.config):",
    );
    const both = [...unstuck, { option: "CONFIG_VIRTIO_FS", value: "y", fragment: "/s/a.config", line: 2, got: "m" }];
    expect(firstLine(both)).toBe(
      "/s/scenario.yaml:6:7 kernels.stock.build.config: 2 config options from the fragments did not stick " +
        "after olddefconfig (final config: /out/.config):",
    );
  });

  it("every option in the shipped fragments is one a real 7.3 .config can carry (no typos)", async () => {
    for (const name of [
      "guest-x86_64.config",
      "guest-arm64-4k.config",
      "guest-arm64-16k.config",
      "guest-arm64-64k.config",
    ]) {
      const text = await fs.readFile(path.join(repoRoot, "kernels", name), "utf8");
      const requests = fragmentRequests([{ file: name, text }]);
      expect(requests.size, name).toBeGreaterThan(60);
      for (const r of requests.values()) expect(r.option, `${name}:${r.line}`).toMatch(/^CONFIG_[A-Z0-9_]+$/);
      expect(requests.get("CONFIG_MODULES")?.value, name).toBe("n");
      for (const must of [
        "CONFIG_VIRTIO_FS",
        "CONFIG_FUSE_FS",
        "CONFIG_OVERLAY_FS",
        "CONFIG_PVPANIC_PCI",
        "CONFIG_DEBUG_FS",
        "CONFIG_DETECT_HUNG_TASK",
      ]) {
        expect(requests.get(must)?.value, `${name} ${must}`).toBe("y");
      }
    }
  });
});

describe("reusing a work slot's .config", () => {
  it("needs kconfig again only when base, fragments, compiler or a Kconfig-touching patch change", async () => {
    expect(
      [
        "fs/fuse/Kconfig",
        "arch/arm64/Kconfig.platforms",
        "scripts/kconfig/merge_config.sh",
        "kernel/configs/tiny.config",
        "arch/x86/configs/tiny.config",
      ].every(affectsKconfig),
    ).toBe(true);
    expect(["fs/fuse/readdir.c", "Makefile", "Documentation/Kconfig.txt/x"].some(affectsKconfig)).toBe(false);
    const base = {
      base: "tinyconfig" as const,
      fragments: ["f"],
      compiler: "gcc 12",
      patches: [] as Array<{ sha256: string; touched: string[] }>,
    };
    const sig = kconfigSignature(base);
    expect(kconfigSignature({ ...base, patches: [{ sha256: "clamp", touched: ["fs/fuse/virtio_fs.c"] }] })).toBe(sig);
    expect(
      kconfigSignature({ ...base, patches: [{ sha256: "k", touched: ["fs/fuse/Kconfig", "fs/fuse/inode.c"] }] }),
    ).not.toBe(sig);
    expect(kconfigSignature({ ...base, fragments: ["g"] })).not.toBe(sig);
    expect(kconfigSignature({ ...base, base: "defconfig" })).not.toBe(sig);
    expect(kconfigSignature({ ...base, compiler: "gcc 13" })).not.toBe(sig);

    const slot = await fs.mkdtemp(path.join(os.tmpdir(), "vmrig-slot-"));
    try {
      const out = path.join(slot, "out");
      await fs.mkdir(out);
      await fs.writeFile(path.join(out, ".config"), "CONFIG_FUSE_FS=y\n");
      expect(await reusableConfig(slot, out, sig)).toBeUndefined();
      await recordConfig(slot, sig, "CONFIG_FUSE_FS=y\n");
      expect(await reusableConfig(slot, out, sig)).toBe("CONFIG_FUSE_FS=y\n");
      expect(await reusableConfig(slot, out, "other")).toBeUndefined();
      await fs.writeFile(path.join(out, ".config"), "CONFIG_FUSE_FS=m\n"); // edited behind vmrig's back
      expect(await reusableConfig(slot, out, sig)).toBeUndefined();
      await recordConfig(slot, sig, "CONFIG_FUSE_FS=m\n");
      await forgetConfig(slot);
      expect(await reusableConfig(slot, out, sig)).toBeUndefined();
    } finally {
      await fs.rm(slot, { recursive: true, force: true });
    }
  });
});
