import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { workloadKeys } from "../../harness/workloads/registry.ts";
import { shell } from "../../harness/workloads/shell.ts";
import { describe, expect, it } from "vitest";
import { jsonSchemaPath, renderJsonSchema, emitJsonSchema } from "../../harness/scenario/json-schema.ts";
import { loadScenario, parseScenario } from "../../harness/scenario/load.ts";
import type { Scenario } from "../../harness/types.ts";
import { SpecError, VmrigError } from "../../harness/util/errors.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const fixtureDir = path.join(repoRoot, "test", "fixtures", "spec");
const fixture = (name: string) => path.join(fixtureDir, name);

/** The SpecError a load throws; fails the test if it loads or throws something else. */
async function specErrorOf(load: () => unknown): Promise<SpecError> {
  try {
    await load();
  } catch (err) {
    expect(err).toBeInstanceOf(SpecError);
    return err as SpecError;
  }
  throw new Error("expected a SpecError, but the scenario loaded");
}

const lines = (err: SpecError) => err.message.split("\n");

/** A small valid scenario to vary in inline tests. */
const base = `
name: t
kernels:
  k: { debian: { version: "6.1", flavour: cloud-amd64 } }
shares:
  - tag: share
`;
const withWorkloads = (workloads: string) => `${base}workloads:\n${workloads}`;

describe("valid scenarios", () => {
  it("loads the full example into a Scenario", async () => {
    const scenario = await loadScenario(fixture("full.yaml"));
    const expected: Scenario = {
      name: "getdents-smoke",
      description: "optional free text",
      file: fixture("full.yaml"),
      machine: {
        arch: "x86_64",
        memoryBytes: 1024 ** 3,
        cpus: 2,
        accel: "auto",
        cmdline: ["swiotlb=force"],
        pageSize: "4K",
      },
      kernels: [
        {
          label: "stock",
          source: { kind: "debian", version: "6.18.15", flavour: "cloud-amd64" },
          cmdline: [],
          expect: { getdents: ["ENOMEM"] },
        },
        {
          label: "newer",
          source: { kind: "debian", version: "7.3", flavour: "cloud-amd64", suite: "trixie-backports" },
          cmdline: ["foo=1"],
          expect: {},
        },
        {
          label: "mine",
          source: {
            kind: "path",
            kernel: fixture("bzImage"),
            modules: fixture("lib/modules/7.3.0"),
            config: "/boot/config-7.3.0",
            writtenAt: {
              kernel: { file: fixture("full.yaml"), line: 9, column: 30, key: "kernels.mine.path.kernel" },
              modules: { file: fixture("full.yaml"), line: 9, column: 50, key: "kernels.mine.path.modules" },
              config: { file: fixture("full.yaml"), line: 9, column: 79, key: "kernels.mine.path.config" },
            },
          },
          cmdline: [],
          expect: {},
        },
        {
          label: "built",
          source: {
            kind: "build",
            spec: {
              label: "built",
              source: { kind: "debian", package: "linux-source-7.3" },
              arch: "x86_64",
              base: "tinyconfig",
              fragments: [fixture("kernels/guest-x86_64.config")],
              patches: [fixture("kernels/patches/x.patch")],
              // Where the files were written, for a build that later finds one missing.
              writtenAt: {
                source: { file: fixture("full.yaml"), line: 10, column: 31, key: "kernels.built.build.source" },
                config: { file: fixture("full.yaml"), line: 10, column: 72, key: "kernels.built.build.config" },
                "config[0]": { file: fixture("full.yaml"), line: 10, column: 81, key: "kernels.built.build.config[0]" },
                "patches[0]": {
                  file: fixture("full.yaml"),
                  line: 10,
                  column: 121,
                  key: "kernels.built.build.patches[0]",
                },
              },
            },
          },
          cmdline: [],
          expect: {},
        },
      ],
      shares: [
        {
          tag: "share",
          cache: "auto",
          queueSize: 128,
          sandbox: "none",
          threadPoolSize: 0,
          extraArgs: [],
          accessPlatform: false,
        },
      ],
      workloads: [
        { id: "getdents", kind: "readdir", share: "share", entries: 5000, bufferBytes: 1024 ** 2 },
        {
          id: "read-1M",
          kind: "read",
          share: "share",
          sizeBytes: 64 * 1024 ** 2,
          blockBytes: 1024 ** 2,
          direct: false,
          repeatForMs: 0,
        },
        {
          id: "write-1M",
          kind: "write",
          share: "share",
          sizeBytes: 64 * 1024 ** 2,
          blockBytes: 1024 ** 2,
          direct: false,
        },
        { id: "uname", kind: "shell", command: "uname -r", expectExit: 0 },
      ],
      expectDefault: ["PASS", "ENOMEM"],
      timeouts: { bootSeconds: 60, stepSeconds: 60, livenessSeconds: 15 },
    };
    expect(scenario).toEqual(expected);
  });

  it("fills defaults and keeps kernel labels and their order as written", async () => {
    const scenario = await loadScenario(fixture("minimal.yaml"));
    // "7" would sort first in a JS object and an unquoted 6.10 would be the number 6.1.
    expect(scenario.kernels.map((k) => k.label)).toEqual(["7", "6.10", "6.1"]);
    expect(scenario.machine).toEqual({ arch: "x86_64", memoryBytes: 1024 ** 3, cpus: 2, accel: "auto", cmdline: [] });
    expect(scenario.timeouts).toEqual({ bootSeconds: 60, stepSeconds: 120, livenessSeconds: 15 });
    expect(scenario.expectDefault).toEqual(["PASS"]);
    expect(scenario.shares).toEqual([
      { tag: "data", cache: "auto", queueSize: 128, sandbox: "auto", extraArgs: [], accessPlatform: false },
    ]);
    expect(scenario.workloads).toEqual([
      { id: "listing", kind: "readdir", share: "data", entries: 10, bufferBytes: 32 * 1024 },
      // No blockSize and a size under 1M: one request of the whole size.
      { id: "bulk", kind: "write", share: "data", sizeBytes: 4096, blockBytes: 4096, direct: false },
    ]);
  });

  it("keeps machine.tcgPageZeroing only when it turns page zeroing off", () => {
    const workloads = "  - { id: a, read: { share: share, size: 64K } }\n";
    const off = parseScenario(`machine: { accel: tcg, tcgPageZeroing: false }\n${withWorkloads(workloads)}`, "z.yaml");
    expect(off.machine).toEqual({
      arch: "x86_64",
      memoryBytes: 1024 ** 3,
      cpus: 2,
      accel: "tcg",
      cmdline: [],
      tcgPageZeroing: false,
    });
    const on = parseScenario(`machine: { tcgPageZeroing: true }\n${withWorkloads(workloads)}`, "z.yaml");
    expect(on.machine.tcgPageZeroing).toBeUndefined();
  });

  it("a shell workload with files: copied into its share's directory, the command run there", async () => {
    const file = path.join(repoRoot, "test", "fixtures", "config-bisect", "shell-files.yaml");
    const shellW = '{ share: share, files: [../guest-programs/exec-stale.c], command: "cat x" }';
    const text = `${base}workloads:\n  - { id: w, shell: ${shellW} }\n`;
    const w = parseScenario(text, file).workloads[0]!;
    const source = path.join(repoRoot, "test", "fixtures", "guest-programs", "exec-stale.c");
    expect(w).toEqual({ id: "w", kind: "shell", command: "cat x", expectExit: 0, share: "share", files: [source] });
    if (w.kind !== "shell") throw new Error(`a shell workload, got ${w.kind}`);
    const hostDir = mkdtempSync(path.join(os.tmpdir(), "vmrig-shell-files-"));
    await shell.prepareHost!(w, { hostDir });
    expect(readFileSync(path.join(hostDir, "w", "exec-stale.c"))).toEqual(readFileSync(source));
    rmSync(hostDir, { recursive: true });
    expect(shell.guestCommand(w, { guestDir: "/mnt/share" })).toBe("cd /mnt/share/w && (\ncat x\n)");
    const plain = parseScenario(withWorkloads('  - { id: p, shell: { command: "cat x" } }\n'), file).workloads[0]!;
    expect(plain.kind === "shell" && shell.guestCommand(plain, {})).toBe("cat x");
  });

  it("a shell workload's files: without a share, or missing, are refused at their line", async () => {
    const file = "files.yaml";
    const noShare = `${base}workloads:\n  - { id: w, shell: { files: [x], command: y } }\n`;
    expect(lines(await specErrorOf(() => parseScenario(noShare, file)))).toEqual([
      `${file}:8:23 workloads[0].shell.files: files go into a share: name it in \`share\``,
    ]);
    const missing = `${base}workloads:\n  - { id: w, shell: { share: share, files: [nope], command: y } }\n`;
    expect(lines(await specErrorOf(() => parseScenario(missing, path.join(os.tmpdir(), file))))).toEqual([
      `${path.join(os.tmpdir(), file)}:8:45 workloads[0].shell.files[0]: ` +
        `${path.join(os.tmpdir(), "nope")} is not a file`,
    ]);
    const twice = `${base}workloads:\n  - { id: w, shell: { share: share, files: [a/x, b/x], command: y } }\n`;
    expect(lines(await specErrorOf(() => parseScenario(twice, file)))).toEqual([
      `${file}:8:37 workloads[0].shell.files: two files with the same name would overwrite each other in the share`,
    ]);
  });

  it("accepts sizes as numbers and with binary units", () => {
    const scenario = parseScenario(
      withWorkloads(`
  - { id: a, read: { share: share, size: 64K, blockSize: 512 } }
  - { id: b, read: { share: share, size: 2MiB, blockSize: 4096, direct: true } }
  - { id: c, write: { share: share, size: 1G } }
`),
      "inline.yaml",
    );
    expect(scenario.workloads).toEqual([
      { id: "a", kind: "read", share: "share", sizeBytes: 65536, blockBytes: 512, direct: false, repeatForMs: 0 },
      {
        id: "b",
        kind: "read",
        share: "share",
        sizeBytes: 2 * 1024 ** 2,
        blockBytes: 4096,
        direct: true,
        repeatForMs: 0,
      },
      { id: "c", kind: "write", share: "share", sizeBytes: 1024 ** 3, blockBytes: 1024 ** 2, direct: false },
    ]);
  });

  it("normalises expectations: one word or a list, -ENOMEM and libc aliases to the kernel's name", () => {
    const scenario = parseScenario(
      `name: t
kernels:
  k:
    debian: { version: "6.1", flavour: cloud-amd64 }
    expect: { w: [PASS, -ENOMEM, ENOTSUP, ERRNO, BOOT-FAIL, ENOTSUPP] }
workloads: [{ id: w, shell: { command: "true" } }]
expect: { default: -EWOULDBLOCK }
`,
      "inline.yaml",
    );
    expect(scenario.expectDefault).toEqual(["EAGAIN"]);
    expect(scenario.kernels[0]!.expect).toEqual({
      w: ["PASS", "ENOMEM", "EOPNOTSUPP", "ERRNO", "BOOT-FAIL", "ENOTSUPP"],
    });
  });

  it("accepts every power-of-two queue size QEMU does", () => {
    for (const queueSize of [1, 16, 128, 1024]) {
      const scenario = parseScenario(
        `${base.replace("- tag: share", `- { tag: share, queueSize: ${queueSize} }`)}` +
          "workloads: [{ id: w, shell: { command: x } }]",
        "inline.yaml",
      );
      expect(scenario.shares[0]!.queueSize).toBe(queueSize);
    }
  });

  it("lets kernels share settings through anchors and merge keys", () => {
    const scenario = parseScenario(
      `name: t
kernels:
  a: { debian: &deb { version: "6.1", flavour: cloud-amd64 } }
  b: { debian: { <<: *deb, suite: trixie-backports } }
workloads: [{ id: w, shell: { command: x } }]
`,
      "inline.yaml",
    );
    expect(scenario.kernels[1]!.source).toEqual({
      kind: "debian",
      version: "6.1",
      flavour: "cloud-amd64",
      suite: "trixie-backports",
    });
  });

  it("resolves relative kernel paths against the scenario's directory, not the working directory", () => {
    const scenario = parseScenario(
      `name: t
kernels:
  p: { path: { kernel: ../out/bzImage } }
  b: { build: { source: "debian:linux-source-7.3", config: frag.config, patches: [/abs/x.patch, y.patch] } }
workloads: [{ id: w, shell: { command: x } }]
`,
      "some/dir/s.yaml",
    );
    const dir = path.resolve("some/dir");
    expect(scenario.file).toBe(path.join(dir, "s.yaml"));
    expect(scenario.kernels[0]!.source).toMatchObject({ kind: "path", kernel: path.resolve(dir, "../out/bzImage") });
    expect(scenario.kernels[1]!.source).toMatchObject({
      kind: "build",
      spec: { fragments: [path.join(dir, "frag.config")], patches: ["/abs/x.patch", path.join(dir, "y.patch")] },
    });
  });
});

describe("problems are reported as file:line:column key: message", () => {
  it("malformed YAML", async () => {
    const file = fixture("malformed.yaml");
    const err = await specErrorOf(() => loadScenario(file));
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatchObject({ file, line: 4, column: 1 });
    expect(err.message).toMatch(new RegExp(`^${file}:4:1: invalid YAML: Flow map`));
  });

  it("unknown key, listing the known ones", async () => {
    const file = fixture("unknown-key.yaml");
    const err = await specErrorOf(() => loadScenario(file));
    expect(lines(err)).toEqual([
      `${file}:3:3 machine.memroy: unknown key (known: arch, memory, cpus, accel, cmdline, pageSize, tcgPageZeroing)`,
    ]);
    expect(err.issues[0]).toEqual({
      file,
      line: 3,
      column: 3,
      key: "machine.memroy",
      message: "unknown key (known: arch, memory, cpus, accel, cmdline, pageSize, tcgPageZeroing)",
    });
  });

  it("bad size", async () => {
    const file = fixture("bad-size.yaml");
    const err = await specErrorOf(() => loadScenario(file));
    expect(lines(err)).toEqual([`${file}:15:18 workloads[2].read.blockSize: expected a size like 1M, got "1Q"`]);
  });

  it("duplicate workload id, at the repeat", async () => {
    const file = fixture("duplicate-id.yaml");
    const err = await specErrorOf(() => loadScenario(file));
    expect(lines(err)).toEqual([`${file}:7:9 workloads[1].id: duplicate workload id "uname" (first at workloads[0])`]);
  });

  it("workload naming an unknown share", async () => {
    const file = fixture("unknown-share.yaml");
    const err = await specErrorOf(() => loadScenario(file));
    expect(lines(err)).toEqual([`${file}:8:20 workloads[0].read.share: unknown share "shared" (declared: share)`]);
  });

  it("kernel expect naming an unknown workload, at the key", async () => {
    const file = fixture("unknown-expect.yaml");
    const err = await specErrorOf(() => loadScenario(file));
    expect(lines(err)).toEqual([
      `${file}:7:7 kernels.stock.expect.unmae: unknown workload "unmae" (workloads: getdents)`,
    ]);
  });

  it("queue size that QEMU's vhost-user-fs would refuse", async () => {
    const file = fixture("bad-queue-size.yaml");
    const err = await specErrorOf(() => loadScenario(file));
    expect(lines(err)).toEqual([
      `${file}:6:16 shares[0].queueSize: ` +
        "must be a power of two no larger than 1024 (QEMU vhost-user-fs queue-size), got 100",
      `${file}:8:16 shares[1].queueSize: ` +
        "must be a power of two no larger than 1024 (QEMU vhost-user-fs queue-size), got 2048",
    ]);
  });

  it("bad accel", async () => {
    const file = fixture("bad-accel.yaml");
    const err = await specErrorOf(() => loadScenario(file));
    expect(lines(err)).toEqual([`${file}:3:10 machine.accel: expected one of auto, kvm, tcg, got "xen"`]);
  });

  it("collects every problem in one error, in file order", async () => {
    const file = fixture("many-problems.yaml");
    const err = await specErrorOf(() => loadScenario(file));
    expect(lines(err)).toEqual([
      `${file}:2:18 machine.cpus: must be greater than 0, got 0`,
      `${file}:2:31 machine.pageSize: x86_64 only has 4K pages, got "64K"`,
      `${file}:5:24 kernels.stock.debian.version: expected a quoted string like "6.18.15", ` +
        "got the number 6.1 (YAML reads an unquoted 6.10 as 6.1)",
      `${file}:6:25 kernels.stock.expect.r[1]: unknown errno name "ENOMEN" (did you mean ENOMEM?)`,
      `${file}:7:3 kernels["bad label"]: has path and build; give exactly one kernel source (debian, path, build)`,
      `${file}:7:3 kernels["bad label"]: kernel label "bad label" ` +
        "must start with a letter or digit and use only letters, digits and _ . + -",
      `${file}:9:5 kernels["bad label"].build.config: missing: list the config fragments to merge over the base ` +
        "(e.g. kernels/guest-x86_64.config)",
      `${file}:9:22 kernels["bad label"].build.source: "x" is not a source: expected "debian:linux-source-X.Y" ` +
        '(optionally "=<debian version>" and/or "@<suite>"), { git: <repository>, ref: <branch, tag or commit> } ' +
        "or { tarball: <file.tar.xz> }",
      `${file}:10:3 kernels.empty: needs a kernel source: one of debian, path, build`,
      `${file}:12:26 shares[0].cache: expected one of auto, always, never, metadata, got "sometimes"`,
      `${file}:14:57 workloads[0].read.blockSize: must not exceed size (1M), got 2M`,
      `${file}:15:11 workloads[1].id: workload id "-bad" ` +
        "must start with a letter or digit and use only letters, digits and _ . -",
      `${file}:15:35 workloads[1].shell.command: expected a string, got true`,
      `${file}:16:5 workloads[2]: needs a workload kind: one of ${workloadKeys()
        .map((k) => k.name)
        .join(", ")}`,
      `${file}:18:12 expect.default: expected PASS, FAIL, SKIP, SHORT, HANG, CRASH, BOOT-FAIL, INFRA, ERRNO, ANY ` +
        'or an errno name like ENOMEM, got "pass"',
    ]);
  });

  it("a missing key is reported at the key that should hold it", async () => {
    const err = await specErrorOf(() =>
      parseScenario(
        `# comment
kernels:
  k:
    debian:
      flavour: cloud-amd64
workloads:
  - shell: { command: x }
`,
        "s.yaml",
      ),
    );
    // (flavour may be left out: the row's arch and page size pick it; version may not.)
    expect(lines(err)).toEqual([
      "s.yaml:2:1 name: required key is missing",
      "s.yaml:4:5 kernels.k.debian.version: required key is missing",
      "s.yaml:7:5 workloads[0].id: required key is missing",
    ]);
  });

  it("empty collections and wrong top-level types", async () => {
    expect(lines(await specErrorOf(() => parseScenario("", "e.yaml")))).toEqual([
      "e.yaml:1:1: expected a mapping, got null (an empty value)",
    ]);
    expect(lines(await specErrorOf(() => parseScenario("name: t\nkernels: {}\nworkloads: []\n", "e.yaml")))).toEqual([
      "e.yaml:2:1 kernels: declare at least one kernel",
      "e.yaml:3:1 workloads: declare at least one workload",
    ]);
  });

  it("duplicate kernel labels are a YAML error at the repeated key", async () => {
    const err = await specErrorOf(() =>
      parseScenario(`${base}  k: { path: { kernel: x } }\n`.replace("shares:\n  - tag: share\n", ""), "d.yaml"),
    );
    expect(lines(err)).toEqual(["d.yaml:5:3: invalid YAML: Map keys must be unique"]);
  });

  it("a missing file is a VmrigError naming it", async () => {
    const missing = fixture("no-such-scenario.yaml");
    const err = await loadScenario(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VmrigError);
    expect(err).not.toBeInstanceOf(SpecError);
    expect((err as Error).message).toBe(`scenario file not found: ${missing}`);
  });
});

describe("JSON Schema for editors", () => {
  it("scenarios/vmrig-scenario.schema.json is up to date (regenerate: npx tsx harness/scenario/json-schema.ts)", () => {
    expect(readFileSync(jsonSchemaPath, "utf8")).toBe(renderJsonSchema());
  });

  it("describes the input a user writes: strict, with defaults and size strings", () => {
    const schema = emitJsonSchema() as {
      additionalProperties: boolean;
      required: string[];
      properties: Record<string, { properties?: Record<string, { default?: unknown }> }>;
    };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(["name", "kernels", "workloads"]);
    expect(schema.properties.machine!.properties!.memory!.default).toBe("1G");
  });
});

describe("hostile scenario text", () => {
  it.each([
    ["name: " + "n".repeat(300), "1:7 name: scenario name is 300 characters long; at most 64"],
    [`kernels:\n  ${"k".repeat(90)}: { path: /x }`, "2:3 kernels.kkkk"],
  ])("refuses identifiers too long to name files: %#", async (text, message) => {
    const err = await specErrorOf(async () => parseScenario(text + "\n", "long.yaml"));
    expect(err.message).toContain(message);
  });

  it("refuses an alias bomb before expanding it, naming the first alias", async () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (const [i, name] of [..."bcdefg"].entries()) {
      const prev = "abcdefg"[i]!;
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(",")}]`);
    }
    const err = await specErrorOf(async () => parseScenario(`name: bomb\n${levels.join("\n")}\n`, "bomb.yaml"));
    expect(err.message).toMatch(/^bomb\.yaml:3:8: aliases expand too far \(more than 100 nodes each\)/);
  });
});

describe("values this host cannot give, or that no real scenario needs", () => {
  const scenario = (machine: string, extra = "") =>
    `name: x\nmachine: ${machine}\nkernels:\n  k: { path: { kernel: /x } }\n${extra}workloads:\n  - { id: w, shell: { command: "true" } }\n`;
  it.each([
    ["{ memory: 1T }", "machine.memory: 1T is more than this host's"],
    ["{ memory: 1 }", "machine.memory: at least 64M, got 1"],
    [
      "{ cpus: 9999 }",
      `machine.cpus: at most ${os.cpus().length * 4} (4 per core of this host's ${os.cpus().length}), got 9999`,
    ],
    ['{ cmdline: ["a=1 b=2"] }', 'machine.cmdline[0]: "a=1 b=2" is more than one parameter: give one per entry'],
    ['{ cmdline: ["x=\\u0000"] }', 'machine.cmdline[0]: "x=\\u0000" holds a control character'],
    ['{ cmdline: ["vmrig.authkey=AAAA"] }', 'machine.cmdline[0]: "vmrig.authkey" is vmrig\'s own parameter'],
    ['{ cmdline: ["init=/bin/sh"] }', 'machine.cmdline[0]: "init" is vmrig\'s own parameter'],
    ["{}\ntimeouts: { step: 1000000000 }", "timeouts.step: at most 86400 seconds (a day), got 1000000000"],
  ])("machine %s is refused at load", async (machine, message) => {
    const err = await specErrorOf(async () => parseScenario(scenario(machine), "host.yaml"));
    expect(err.message).toContain(message);
  });

  it("accepts quoted values with spaces and rdinit (a guest that never lets vmrig in)", () => {
    const s = parseScenario(scenario('{ cmdline: ["dyndbg=\\"file fuse.c +p\\"", "rdinit=/bin/sh"] }'), "ok.yaml");
    expect(s.machine.cmdline).toEqual(['dyndbg="file fuse.c +p"', "rdinit=/bin/sh"]);
  });

  it.each([
    ["{ id: r, readdir: { share: s, entries: 1000000000 } }", "workloads[0].readdir.entries: at most 10000000 files"],
    ["{ id: r, read: { share: s, size: 1T } }", "workloads[0].read.size: 1T does not fit"],
    ["{ id: r, write: { share: s, size: 1T } }", "workloads[0].write.size: 1T does not fit"],
  ])("a workload that would fill the host is refused: %s", async (workload, message) => {
    const text = `name: x\nkernels:\n  k: { path: { kernel: /x } }\nshares: [{ tag: s, threadPoolSize: 100000000 }]\nworkloads:\n  - ${workload}\n`;
    const err = await specErrorOf(async () => parseScenario(text, "fill.yaml"));
    expect(err.message).toContain(message);
    expect(err.message).toContain("shares[0].threadPoolSize");
  });
});

describe("suites", () => {
  it.each([
    ['k: { debian: { version: "6.12", suite: "../../etc" } }', "kernels.k.debian.suite: unknown suite"],
    ['k: { debian: { version: "6.12" }, qemu: { debian: "11.1", suite: "stretch" } }', "kernels.k.qemu.suite"],
    [
      "k: { build: { source: debian:linux-source-7.3@stretch, config: [kernels/guest-x86_64.config] } }",
      'unknown suite "stretch" in',
    ],
  ])("a suite vmrig's archive client does not know is refused: %s", async (kernel, message) => {
    const text = `name: x\nkernels:\n  ${kernel}\nworkloads:\n  - { id: w, shell: { command: "true" } }\n`;
    const err = await specErrorOf(async () => parseScenario(text, "suite.yaml"));
    expect(err.message).toContain(message);
  });
});

describe("what a scenario may touch on the host", () => {
  const withShare = (share: string, memory = "") =>
    `name: x\nkernels:\n  k: { path: { kernel: /x } }\nshares: [${share}]\n${memory}workloads:\n  - { id: w, shell: { command: "true" } }\n`;

  it.each([
    ['{ tag: s, extraArgs: ["--shared-dir", "/"] }', "shares[0].extraArgs[0]: --shared-dir is vmrig's"],
    ['{ tag: s, extraArgs: ["--sandbox=none"] }', "shares[0].extraArgs[0]: --sandbox is vmrig's"],
    ['{ tag: s, extraArgs: ["--readonly", "-o", "source=/etc"] }', "shares[0].extraArgs[1]: -o is vmrig's"],
  ])("virtiofsd options that change what is shared are refused: %s", async (share, message) => {
    const err = await specErrorOf(async () => parseScenario(withShare(share), "share.yaml"));
    expect(err.message).toContain(message);
  });

  it("keeps the virtiofsd options that do not", () => {
    const s = parseScenario(withShare('{ tag: s, extraArgs: ["--readonly", "--xattr"] }'), "ok.yaml");
    expect(s.shares[0]!.extraArgs).toEqual(["--readonly", "--xattr"]);
  });

  it.each([
    ["file:/dev/null", "file:/dev/null is not a regular file or a directory"],
    ["file:/dev/shm/vm,prealloc=on,share=off", "a comma would add QEMU options to the memory backend"],
  ])("guest RAM backed by %s is refused", async (backend, message) => {
    const text = withShare("{ tag: s }", `memory: { backend: "${backend}" }\n`);
    const err = await specErrorOf(async () => parseScenario(text, "mem.yaml"));
    expect(err.message).toContain(message);
  });
});
