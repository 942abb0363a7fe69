// QEMU builds as rows: the Debian dependency closure, choosing a Debian QEMU by
// version, how a private build is invoked, and the `qemu:` key of a scenario row. Stanzas are
// the real trixie / trixie-backports amd64 entries (Packages, 2026-11-21), trimmed to the fields used.
import { describe, expect, it } from "vitest";
import { dependencyClosure, parseDependsField } from "../../harness/debian/deps.ts";
import type { DebPackage, Stanza } from "../../harness/debian/control.ts";
import { chooseDebianQemu, dependencySuites, hostQemu, notInArchive } from "../../harness/qemu/provision.ts";
import { buildQemuArgv, qemuInvocation, type QemuCommand } from "../../harness/qemu/argv.ts";
import { levelTwoArgv } from "../../harness/vfio/nested.ts";
import { rowQemu } from "../../harness/run/runner.ts";
import { parseScenario } from "../../harness/scenario/load.ts";
import { SpecError } from "../../harness/util/errors.ts";

const st = (Package: string, Version: string, Depends = "", Provides = ""): Stanza => ({
  Package,
  Version,
  ...(Depends ? { Depends } : {}),
  ...(Provides ? { Provides } : {}),
});

const QEMU_DEPENDS =
  "libaio1t64 (>= 0.3.93), libc6 (>= 2.38), libgnutls30t64 (>= 3.8.6), libzstd1 (>= 1.5.5), " +
  "libasound2t64 | libasound2, adduser, qemu-system-common (= 1:11.1.3+ds-1~bpo13+1), seabios (>> 1.17.0-1~)";

// Preference order as resolveWithDependencies builds it: trixie-backports first, then trixie.
const backports = [
  st("qemu-system-x86", "1:11.1.3+ds-1~bpo13+1", QEMU_DEPENDS),
  st("qemu-system-common", "1:11.1.3+ds-1~bpo13+1", "libc6 (>= 2.38)"),
  st("seabios", "1.17.0-1~bpo13+1"),
  st(
    "libasound2t64",
    "1.2.16.1-1~bpo13+1",
    "libasound2-data (>= 1.2.16.1-1~bpo13+1), libc6 (>= 2.38)",
    "libasound2 (= 1.2.16.1-1~bpo13+1)",
  ),
  st("libasound2-data", "1.2.16.1-1~bpo13+1"),
];
const trixie = [
  st("seabios", "1.16.3-2"),
  st("libc6", "2.41-12+deb13u4", "libgcc-s1"),
  st("libgcc-s1", "14.2.0-19", "gcc-14-base (= 14.2.0-19), libc6 (>= 2.35)", "libgcc1 (= 1:14.2.0-19)"),
  st("gcc-14-base", "14.2.0-19"),
  st("libaio1t64", "0.3.113-8+b1", "libc6 (>= 2.4)"),
  st("libzstd1", "1.5.7+dfsg-1", "libc6 (>= 2.34)"),
  st(
    "libgnutls30t64",
    "3.8.9-3+deb13u4",
    "libc6 (>= 2.38), libgmp10 (>= 2:6.3.0+dfsg), libhogweed6t64 (>= 3.10), libidn2-0 (>= 2.0.0), " +
      "libnettle8t64 (>= 3.10), libp11-kit0 (>= 0.25.1), libtasn1-6 (>= 4.14), libunistring5 (>= 1.1)",
    "libgnutls30 (= 3.8.9-3+deb13u4)",
  ),
  st("libgmp10", "2:6.3.0+dfsg-3", "libc6 (>= 2.38)"),
  st(
    "libhogweed6t64",
    "3.10.1-1",
    "libc6 (>= 2.14), libgmp10 (>= 2:6.3.0+dfsg), libnettle8t64",
    "libhogweed6 (= 3.10.1-1)",
  ),
  st("libnettle8t64", "3.10.1-1", "libc6 (>= 2.17)", "libnettle8 (= 3.10.1-1)"),
  st("libidn2-0", "2.3.8-2", "libc6 (>= 2.14), libunistring5 (>= 1.1)"),
  st("libunistring5", "1.3-2", "libc6 (>= 2.34)"),
  st("libp11-kit0", "0.25.5-3", "libc6 (>= 2.38), libffi8 (>= 3.4)"),
  st("libffi8", "3.4.8-2", "libc6 (>= 2.34)", "libffi8ubuntu1 (= 3.4.8-2)"),
  st("libtasn1-6", "4.20.0-2+deb13u1", "libc6 (>= 2.38)"),
];
function poolOf(...suites: Stanza[][]): Map<string, Stanza[]> {
  const pool = new Map<string, Stanza[]>();
  for (const suite of suites) for (const s of suite) pool.set(s["Package"]!, [...(pool.get(s["Package"]!) ?? []), s]);
  return pool;
}

describe("Debian dependency closure", () => {
  it("parses Depends: versions, arch qualifiers and alternatives", () => {
    expect(parseDependsField("libc6 (>= 2.38), libasound2t64 | libasound2, python3:any, libfoo [amd64]")).toEqual([
      ["libc6"],
      ["libasound2t64", "libasound2"],
      ["python3"],
      ["libfoo"],
    ]);
    expect(parseDependsField(undefined)).toEqual([]);
  });

  it("follows Depends transitively, prefers the first suite, and leaves out what an unpacked program never uses", () => {
    const c = dependencyClosure(["qemu-system-x86"], poolOf(backports, trixie));
    expect([...c.chosen.keys()].sort()).toEqual([
      "gcc-14-base",
      "libaio1t64",
      "libasound2-data",
      "libasound2t64",
      "libc6",
      "libffi8",
      "libgcc-s1",
      "libgmp10",
      "libgnutls30t64",
      "libhogweed6t64",
      "libidn2-0",
      "libnettle8t64",
      "libp11-kit0",
      "libtasn1-6",
      "libunistring5",
      "libzstd1",
      "qemu-system-common",
      "qemu-system-x86",
      "seabios",
    ]);
    expect(c.chosen.get("seabios")!["Version"]).toBe("1.17.0-1~bpo13+1"); // backports' (QEMU needs >> 1.17.0-1~)
    expect(c.chosen.has("adduser")).toBe(false);
    expect(c.unresolved).toEqual([]);
  });

  it("names what no suite has, and resolves a virtual package through Provides", () => {
    const c = dependencyClosure(
      ["qemu-system-x86"],
      poolOf(
        backports.filter((s) => s["Package"] !== "qemu-system-common"),
        trixie,
      ),
    );
    expect(c.unresolved).toEqual(["qemu-system-common"]);
    const virtual = dependencyClosure(["app"], poolOf([st("app", "1", "libasound2"), ...backports.slice(3)]));
    expect(virtual.chosen.has("libasound2t64")).toBe(true);
  });
});

const pkg = (version: string, suite: string): DebPackage => ({
  name: "qemu-system-x86",
  version,
  architecture: "amd64",
  suite,
  archiveUrl: "",
  filename: "",
  size: 0,
  sha256: "",
  depends: "",
  fields: {},
});
const archive = [
  pkg("1:10.0.7+ds-0+deb13u1", "trixie"),
  pkg("1:10.0.2+ds-2~bpo12+1", "bookworm-backports"),
  pkg("1:11.1.3+ds-1~bpo13+1", "trixie-backports"),
  pkg("1:11.1.3+ds-1", "sid"),
];

describe("choosing a Debian QEMU", () => {
  it("takes the newest of a series, an exact upstream version, or a Debian version", () => {
    expect(chooseDebianQemu(archive, "11.1").chosen).toMatchObject({ version: "1:11.1.3+ds-1", suite: "sid" });
    expect(chooseDebianQemu(archive, "10.0").chosen).toMatchObject({ version: "1:10.0.7+ds-0+deb13u1" });
    expect(chooseDebianQemu(archive, "10.0.2").chosen).toMatchObject({ suite: "bookworm-backports" });
    expect(chooseDebianQemu(archive, "1:11.1.3+ds-1~bpo13+1").chosen).toMatchObject({ suite: "trixie-backports" });
  });

  it("names the nearest versions when the one asked for is gone", () => {
    const r = chooseDebianQemu(archive, "10.2");
    expect(r.chosen).toBeUndefined();
    expect(r.below).toMatchObject({ version: "1:10.0.7+ds-0+deb13u1" });
    expect(r.above).toMatchObject({ version: expect.stringMatching(/^1:11\.1\.3/) });
  });

  it("takes dependencies from the suite and the release it builds on", () => {
    expect(dependencySuites("trixie-backports")).toEqual(["trixie-backports", "trixie"]);
    expect(dependencySuites("bookworm-security")).toEqual(["bookworm-security", "bookworm"]);
    expect(dependencySuites("sid")).toEqual(["sid"]);
    expect(dependencySuites("experimental")).toEqual(["experimental", "sid"]);
  });
});

const private11: QemuCommand = {
  argv0: "/c/q/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
  prefixArgs: [
    "--library-path",
    "/c/q/usr/lib/x86_64-linux-gnu",
    "/c/q/usr/bin/qemu-system-x86_64",
    "-L",
    "/c/q/usr/share/qemu",
  ],
  env: { QEMU_MODULE_DIR: "/c/q/usr/lib/x86_64-linux-gnu/qemu" },
  version: "11.1.3 (Debian 1:11.1.3+ds-1)",
  source: "debian sid qemu-system-x86 1:11.1.3+ds-1",
};

describe("running a QEMU build", () => {
  it("runs a private build through its loader with its module directory; the host's as itself", () => {
    expect(qemuInvocation(private11, ["-m", "1G"])).toEqual({
      binary: "env",
      args: [
        "QEMU_MODULE_DIR=/c/q/usr/lib/x86_64-linux-gnu/qemu",
        private11.argv0,
        ...private11.prefixArgs,
        "-m",
        "1G",
      ],
    });
    expect(qemuInvocation(hostQemu("x86_64", "10.0.2"), ["-m", "1G"])).toEqual({
      binary: "qemu-system-x86_64",
      args: ["-m", "1G"],
    });
  });

  it("puts the row's QEMU in front of the guest's command line and of level 2's", () => {
    const plan = {
      arch: "x86_64" as const,
      accel: "tcg" as const,
      memoryBytes: 1 << 30,
      cpus: 1,
      kernelImage: "/k",
      initrd: "/i",
      cmdline: [],
      virtioFs: [],
      sshHostPort: 0,
      qmpSocket: "/q",
      consoleLog: "/c",
    };
    const host = buildQemuArgv(plan);
    const mine = buildQemuArgv({ ...plan, qemu: private11 });
    expect(mine.binary).toBe("env");
    expect(mine.args).toEqual([
      `QEMU_MODULE_DIR=${private11.env.QEMU_MODULE_DIR}`,
      private11.argv0,
      ...private11.prefixArgs,
      ...host.args,
    ]);
    const s = parseScenario(
      `name: t
kernels: { k: { debian: { version: "6.12" } } }
memory: { virtioMem: { size: 1G, blockSize: 2M } }
vfio: { nested: { device: virtio-net-pci, memory: 128M } }
workloads: [{ id: w, nestedQemu: {} }]
`,
      "t.yaml",
    );
    const l2 = levelTwoArgv(s, [], private11);
    expect(l2.binary).toBe("env");
    expect(l2.args.slice(1, 7)).toEqual([private11.argv0, ...private11.prefixArgs]);
    expect(l2.args).toContain("virtio-mem-pci,id=vm0,memdev=vm0-mem,block-size=2M,requested-size=0");
    expect(levelTwoArgv(s, []).binary).toBe("qemu-system-x86_64");
  });

  it("says in the row which QEMU ran, only when it is not the host's", () => {
    expect(rowQemu({ qemu: private11 })).toEqual({
      suffix: "; QEMU 11.1.3 (Debian 1:11.1.3+ds-1)",
      evidence: { qemu: { version: private11.version, source: private11.source } },
    });
    expect(rowQemu({})).toEqual({ suffix: "", evidence: {} });
  });
});

describe("qemu: in a scenario row", () => {
  const file = (qemu: string) => `name: t
kernels:
  stock: { debian: { version: "6.12" } }
  new-qemu: { debian: { version: "6.12" }, qemu: ${qemu} }
workloads: [{ id: w, shell: { command: "true" } }]
`;
  it("loads a Debian QEMU choice per row; rows without one use the host's", () => {
    const s = parseScenario(file(`{ debian: "11.1", suite: trixie-backports }`), "t.yaml");
    expect(s.kernels.map((k) => k.qemu)).toEqual([
      undefined,
      { kind: "debian", version: "11.1", suite: "trixie-backports" },
    ]);
  });
  it("refuses an unquoted version and an unknown key with file:line", () => {
    const problems = (text: string) => {
      try {
        parseScenario(text, "t.yaml");
      } catch (e) {
        expect(e).toBeInstanceOf(SpecError);
        return (e as Error).message.split("\n");
      }
      return [];
    };
    expect(problems(file("{ debian: 11.1 }"))).toEqual([
      `t.yaml:4:60 kernels.new-qemu.qemu.debian: expected a quoted string like "11.1", got the number 11.1`,
    ]);
    const typo = problems(file(`{ debain: "11.1" }`));
    expect(typo).toContain("t.yaml:4:44 kernels.new-qemu.qemu.debian: required key is missing");
    expect(typo.some((l) => /^t\.yaml:4:\d+ kernels\.new-qemu\.qemu.*debain/.test(l))).toBe(true);
  });
});

describe("notInArchive", () => {
  it("names the suites searched and the nearest versions without Debian's repack suffix", () => {
    const below = pkg("1:10.0.7+ds-0+deb13u1", "trixie");
    const above = pkg("1:11.1.3+ds-1~bpo13+1", "trixie-backports");
    expect(notInArchive({ kind: "debian", version: "10.2" }, ["bookworm", "trixie"], below, above)).toBe(
      "QEMU 10.2 is not in Debian's archive (searched bookworm, trixie); " +
        "nearest available: 10.0.7 (trixie), 11.1.3 (trixie-backports)",
    );
  });
  it("names the one suite asked for, and says when there is no QEMU at all", () => {
    expect(notInArchive({ kind: "debian", version: "9", suite: "sid" }, ["sid"])).toBe(
      "QEMU 9 is not in Debian's sid (searched sid); no QEMU package found at all",
    );
  });
});
