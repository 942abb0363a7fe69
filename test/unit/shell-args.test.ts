// vmrig shell's pure parts: its arguments, the row it boots, the scenario --kernel-path boots in,
// and the architecture read from a kernel image's header (real Debian images' first KiB).
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { kernelPathScenario, parseShellArgs, shellRow } from "../../harness/commands/shell-args.ts";
import { imageArch } from "../../harness/kernels/path.ts";
import { loadScenario } from "../../harness/scenario/load.ts";
import { helpRequested } from "../../harness/cli-help.ts";
import { VmrigError } from "../../harness/util/errors.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const fixture = (name: string) => readFileSync(path.join(repoRoot, "test/fixtures/kernel-heads", name));
const usageError = (argv: string[]) => {
  try {
    parseShellArgs(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(VmrigError);
    expect((e as VmrigError).exitCode).toBe(2);
    return (e as Error).message;
  }
  throw new Error(`${argv.join(" ")} was accepted`);
};

describe("parseShellArgs", () => {
  it("a scenario, its row and an interactive shell", () => {
    expect(parseShellArgs(["s.yaml"])).toEqual({ target: { kind: "scenario", file: "s.yaml", kernel: undefined } });
    expect(parseShellArgs(["s.yaml", "--kernel", "debian-7.3"]).target).toEqual({
      kind: "scenario",
      file: "s.yaml",
      kernel: "debian-7.3",
    });
  });

  it("-- CMD: one word is a command line as written, several an argv quoted word by word", () => {
    expect(parseShellArgs(["s.yaml", "--", "dmesg | tail"]).command).toBe("dmesg | tail");
    expect(parseShellArgs(["s.yaml", "--", "sh", "-c", "exit 3"]).command).toBe("sh -c 'exit 3'");
    // Options after -- belong to the command, not to vmrig.
    expect(parseShellArgs(["s.yaml", "--", "ls", "--kernel"]).command).toBe("ls --kernel");
  });

  it("--kernel-path with its modules, arch (arm64 is aarch64) and share", () => {
    expect(
      parseShellArgs(["--kernel-path", "bzImage", "--modules", "m", "--arch", "arm64", "--share", "d", "--", "true"]),
    ).toEqual({
      target: { kind: "kernel-path", image: "bzImage", modules: "m", arch: "aarch64", share: "d" },
      command: "true",
    });
  });

  it("refuses what cannot be meant, with the usage", () => {
    expect(usageError([])).toMatch(/needs one scenario file, or --kernel-path IMAGE\nusage: vmrig shell/);
    expect(usageError(["a.yaml", "b.yaml"])).toMatch(/needs one scenario file/);
    expect(usageError(["s.yaml", "--share", "d"])).toMatch(/--share only go with --kernel-path/);
    expect(usageError(["s.yaml", "--kernel-path", "bzImage"])).toMatch(/give no scenario and no --kernel/);
    expect(usageError(["--kernel-path", "bzImage", "--arch", "riscv64"])).toMatch(/--arch: expected x86_64 or aarch64/);
    expect(usageError(["s.yaml", "--"])).toMatch(/nothing after --/);
    expect(() => parseShellArgs(["s.yaml", "--bogus"])).toThrow(/Unknown option '--bogus'/);
  });
});

describe("shellRow", () => {
  it("the first row by default, --kernel's otherwise; an unknown label names the labels", async () => {
    const s = await loadScenario(path.join(repoRoot, "scenarios/default.yaml"));
    expect(shellRow(s).label).toBe("debian-6.18.15");
    expect(shellRow(s, "debian-7.3").label).toBe("debian-7.3");
    expect(() => shellRow(s, "nope")).toThrow(
      /--kernel: unknown kernel label\(s\) nope; the scenario has debian-6\.18\.15, debian-7\.3/,
    );
  });
});

describe("kernelPathScenario", () => {
  it("one path kernel in the schema's default machine; --share adds the share tagged share", () => {
    const s = kernelPathScenario({ kind: "kernel-path", image: "b/bzImage", share: "/d" }, "x86_64", "/src/linux");
    expect(s.kernels.map((k) => [k.label, k.source])).toEqual([
      ["kernel", { kind: "path", kernel: "/src/linux/b/bzImage" }],
    ]);
    expect(s.machine).toMatchObject({ arch: "x86_64", memoryBytes: 1024 ** 3, cpus: 2, accel: "auto", cmdline: [] });
    expect(s.shares).toEqual([expect.objectContaining({ tag: "share", cache: "auto", accessPlatform: false })]);
    const bare = kernelPathScenario({ kind: "kernel-path", image: "/i", modules: "m" }, "aarch64", "/w");
    expect(bare.shares).toEqual([]);
    expect(bare.machine.arch).toBe("aarch64");
    expect(bare.kernels[0]!.source).toEqual({ kind: "path", kernel: "/i", modules: "/w/m" });
  });
});

describe("imageArch", () => {
  it("Debian's x86_64 vmlinuz (a bzImage)", () => {
    expect(imageArch(fixture("vmlinuz-7.3.4-cloud-amd64.head"))).toBe("x86_64");
  });
  it("Debian's arm64 vmlinuz (an Image with an EFI stub), also gzipped, also by its PE header alone", () => {
    const arm64 = fixture("vmlinuz-7.3.4-arm64.head");
    expect(imageArch(arm64)).toBe("aarch64");
    expect(imageArch(gzipSync(arm64))).toBe("aarch64");
    // An EFI zboot image has the PE header without the Image magic: the COFF machine (0xaa64) decides.
    const peOnly = Buffer.from(arm64);
    peOnly.write("\0\0\0\0", 0x38, "latin1");
    expect(imageArch(peOnly)).toBe("aarch64");
  });
  it("nothing it knows: undefined", () => {
    expect(imageArch(Buffer.alloc(0x1000))).toBeUndefined();
    expect(imageArch(Buffer.from("\x7fELF"))).toBeUndefined();
    expect(imageArch(Buffer.from([0x1f, 0x8b, 0x08, 0x00]))).toBeUndefined();
  });
});

describe("vmrig shell --help", () => {
  it("says every option", () => {
    const help = helpRequested(["shell", "--help"])!;
    for (const o of ["--kernel LABEL", "-- CMD", "--kernel-path", "--modules", "--arch", "--share"])
      expect(help).toContain(o);
    // After --, --help is the guest command's.
    expect(helpRequested(["shell", "s.yaml", "--", "ls", "--help"])).toBeUndefined();
  });
});
