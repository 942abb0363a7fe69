// `vmrig export kcidb`: real runs' results.json (test/fixtures/kcidb/runs, README there) mapped to
// KCIDB I/O data and validated with ajv against KCIDB's published schema v5.3, vendored from
// kernelci/kcidb-io (test/fixtures/kcidb/kcidb-io-v5.3.schema.json says from which commit).
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { Ajv, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { afterAll, describe, expect, it } from "vitest";
import { loadRun } from "../../harness/history/history.ts";
import { kcidbStatus, runToKcidb, testPath, type KcidbReport } from "../../harness/report/kcidb.ts";
import type { CellOutcome } from "../../harness/types.ts";
import { repoRoot } from "../../harness/util/paths.ts";

const fixtures = path.join(repoRoot, "test/fixtures/kcidb");
const runsRoot = path.join(fixtures, "runs");
const schema = JSON.parse(readFileSync(path.join(fixtures, "kcidb-io-v5.3.schema.json"), "utf8")) as object;

// ajv-formats is CommonJS: its default export is the plugin function itself.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as unknown as (
  ajv: Ajv,
) => Ajv;
const ajv = addFormats(new Ajv({ allErrors: true, strict: false }));
const validate: ValidateFunction = ajv.compile(schema);

function problems(report: unknown): string[] {
  return validate(report) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

const runDirs = readdirSync(runsRoot).flatMap((s) =>
  readdirSync(path.join(runsRoot, s)).map((stamp) => path.join(runsRoot, s, stamp)),
);
const load = (id: string) => loadRun(path.join(runsRoot, id));
const opts = { origin: "vmrig_lab", artifactsUrl: "https://ci.example.org/results/" };
const testOf = (r: KcidbReport, suffix: string) => {
  const t = r.tests.find((x) => x.id.endsWith(suffix));
  if (!t) throw new Error(`no test ${suffix} in ${r.tests.map((x) => x.id).join(", ")}`);
  return t;
};

describe("the vendored KCIDB schema rejects what KCIDB rejects", () => {
  it("an empty v5 report passes; a wrong major, an INFRA status, an id without origin fail", () => {
    expect(problems({ version: { major: 5, minor: 3 } })).toEqual([]);
    expect(problems({ version: { major: 4, minor: 0 } })).not.toEqual([]);
    const test = { id: "vmrig:t", build_id: "vmrig:b", origin: "vmrig" };
    expect(problems({ version: { major: 5 }, tests: [test] })).toEqual([]);
    expect(problems({ version: { major: 5 }, tests: [{ ...test, status: "INFRA" }] })).toEqual([
      "/tests/0/status must be equal to one of the allowed values",
    ]);
    expect(problems({ version: { major: 5 }, tests: [{ ...test, id: "no-origin" }] })).not.toEqual([]);
    expect(problems({ version: { major: 5 }, tests: [{ ...test, path: "a..b" }] })).not.toEqual([]);
    expect(problems({ version: { major: 5 }, tests: [{ ...test, log_url: "not a url" }] })).not.toEqual([]);
  });
});

describe("runToKcidb on captured runs", () => {
  it.each(runDirs.map((d) => path.relative(runsRoot, d)))("%s validates against KCIDB v5.3", async (id) => {
    const report = runToKcidb(await load(id), opts);
    expect(problems(report)).toEqual([]);
    const cells = (await load(id)).result.rows.reduce((n, r) => n + r.cells.length, 0);
    expect(report.tests).toHaveLength(cells);
    // Every link resolves inside the report: a test's build, a build's checkout.
    const builds = new Set(report.builds.map((b) => b.id));
    const checkouts = new Set(report.checkouts.map((c) => c.id));
    for (const t of report.tests) expect(builds.has(t.build_id)).toBe(true);
    for (const b of report.builds) expect(checkouts.has(b.checkout_id)).toBe(true);
    const ids = [...report.tests, ...report.builds, ...report.checkouts].map((x) => x.id);
    expect(ids.every((x) => x.startsWith("vmrig_lab:"))).toBe(true);
    expect(new Set(report.tests.map((t) => t.id)).size).toBe(report.tests.length);
  });

  it("a Debian kernel is a checkout of Debian's linux source and a build with its package and version", async () => {
    const r = runToKcidb(await load("getdents-swiotlb-debian/2026-12-02T23-04-40Z"), opts);
    expect(r.checkouts.map((c) => c.id)).toEqual([
      "vmrig_lab:debian:linux=6.18.15-1~bpo13+1",
      "vmrig_lab:debian:linux=7.3.4-1~bpo13+1",
    ]);
    expect(r.builds[0]).toMatchObject({
      id: "vmrig_lab:debian:linux-image-6.18.15+deb13-cloud-amd64=6.18.15-1~bpo13+1",
      checkout_id: "vmrig_lab:debian:linux=6.18.15-1~bpo13+1",
      architecture: "x86_64",
      config_name: "cloud-amd64",
      misc: { debian: { package: "linux-image-6.18.15+deb13-cloud-amd64", version: "6.18.15-1~bpo13+1" } },
    });
  });

  it("an expected -ENOMEM is FAIL with misc.met; console as log URL; QEMU, TCG, page size as environment", async () => {
    const r = runToKcidb(await load("getdents-swiotlb-debian/2026-12-02T23-04-40Z"), opts);
    const t = testOf(r, "/debian-6.18.15/getdents-1M");
    expect(t).toMatchObject({
      id: "vmrig_lab:getdents-swiotlb-debian/2026-12-02T23-04-40Z/debian-6.18.15/getdents-1M",
      path: "vmrig.getdents-swiotlb-debian.getdents-1M",
      status: "FAIL",
      comment: "-ENOMEM (mount healthy)",
      log_url: "https://ci.example.org/results/getdents-swiotlb-debian/2026-12-02T23-04-40Z/debian-6.18.15/console.log",
      misc: { vmrig: { outcome: "ERRNO", expected: ["ENOMEM"], met: true, errno: "ENOMEM", mountHealthy: true } },
      environment: {
        comment: "QEMU 10.0.2, TCG, x86_64, 4K pages on vm",
        misc: { qemu: "10.0.2", accel: "tcg", arch: "x86_64", pageSize: "4K" },
      },
    });
    // The cell's own reproducer is an output file; other cells' are not.
    expect(t.output_files.map((f) => f.name)).toContain("repro-getdents-1M.sh");
    expect(testOf(r, "/debian-6.18.15/read-1M").output_files.map((f) => f.name)).not.toContain("repro-getdents-1M.sh");
    expect(testOf(r, "/debian-7.3/getdents-1M")).toMatchObject({ status: "PASS", misc: { vmrig: { met: true } } });
  });

  it("a CRASH is FAIL with its title and signature in misc and its oops as the excerpt", async () => {
    const run = await load("keep/2026-12-02T18-55-37Z");
    const t = testOf(runToKcidb(run, opts), "/deb73/sysrq-crash");
    expect(t).toMatchObject({
      status: "FAIL",
      comment: "CRASH: Kernel panic - not syncing: sysrq triggered crash",
      misc: {
        vmrig: {
          outcome: "CRASH",
          expected: ["CRASH"],
          met: true,
          crash: {
            title: "Kernel panic - not syncing: sysrq triggered crash",
            signature: expect.stringMatching(
              /^Kernel panic - not syncing: sysrq triggered crash \| sysrq_handle_crash/,
            ),
          },
        },
      },
    });
    expect(t.log_excerpt).toMatch(/sysrq_handle_crash\+0x1a\/0x20/);
  });

  it("a HANG is FAIL with what hung; its sysrq-w stacks are its output file", async () => {
    const t = testOf(runToKcidb(await load("keep-hang/2026-12-02T23-07-34Z"), opts), "/deb73/kill");
    expect(t).toMatchObject({ status: "FAIL", misc: { vmrig: { outcome: "HANG", met: true, hang: {} } } });
    expect(t.output_files.map((f) => f.name)).toContain("stacks-kill.txt");
  });

  it("KTAP test cases sit under their workload; an expected FAIL and a SKIP keep KCIDB's FAIL and SKIP", async () => {
    const r = runToKcidb(await load("kselftest-fs/2026-12-02T19-08-01Z"), opts);
    const chown = testOf(r, "/debian-6.12/anon-inode/global.anon_inode_no_chown");
    expect(chown).toMatchObject({
      path: "vmrig.kselftest-fs.anon-inode.global_anon_inode_no_chown",
      status: "FAIL",
      misc: { vmrig: { expected: ["FAIL"], met: true, partOf: "anon-inode" } },
    });
    expect(testOf(r, "/debian-6.12/nullfs-atime/global.empty_mntns_root_atime").status).toBe("SKIP");
    expect(testOf(r, "/debian-7.3/anon-inode/global.anon_inode_no_chown").status).toBe("PASS");
  });

  it("interrupted: a cell never run is MISS, unmet, run incomplete; a path kernel is its image hash", async () => {
    const r = runToKcidb(await load("p/2026-12-02T19-07-12Z"), opts);
    expect(r.tests[0]).toMatchObject({ status: "MISS", misc: { vmrig: { met: false, runComplete: false } } });
    expect(r.builds[0]!.id).toMatch(/^vmrig_lab:build:sha256:[0-9a-f]{64}$/);
    expect(r.checkouts[0]!.misc).toMatchObject({ path: { kernel: expect.stringMatching(/vmlinuz$/) } });
  });

  const capture = "kcidb-capture/2026-12-02T23-50-16Z";

  it("an unmet FAIL and an expected FAIL are both FAIL, told apart by misc.met and misc.expected", async () => {
    const r = runToKcidb(await load(capture), opts);
    expect(testOf(r, "/debian-7.3/unexpected-exit")).toMatchObject({
      status: "FAIL",
      comment: "FAIL: exit 3, expected 0",
      misc: { vmrig: { outcome: "FAIL", expected: ["PASS"], met: false } },
    });
    expect(testOf(r, "/built-arm64-64k+cap/unexpected-exit")).toMatchObject({
      status: "FAIL",
      misc: { vmrig: { outcome: "FAIL", expected: ["FAIL"], met: true } },
    });
  });

  it("INFRA is ERROR, never FAIL: a 4K kernel in a row that declares 64K pages", async () => {
    const r = runToKcidb(await load(capture), opts);
    const infra = r.tests.filter((t) => t.id.includes("/arm64-4k-says-64k/"));
    expect(infra.map((t) => [t.status, (t.misc.vmrig as { outcome: string }).outcome])).toEqual([
      ["ERROR", "INFRA"],
      ["ERROR", "INFRA"],
      ["ERROR", "INFRA"],
    ]);
    expect(infra[0]!.comment).toMatch(/^INFRA: page size mismatch: the scenario says 64K, the running kernel has 4K/);
  });

  it("a built kernel: a checkout of source and patches, an arm64 build of its config; 64K pages", async () => {
    const r = runToKcidb(await load(capture), opts);
    expect(r.checkouts.find((c) => c.id === "vmrig_lab:checkout:c33c7969e3c9f247da13909c5851783d")).toMatchObject({
      misc: {
        source: "debian:linux-source-7.3",
        config: [expect.stringMatching(/guest-arm64-64k\.config$/)],
        patches: [expect.stringMatching(/fuse-readdir-cap-max-io\.patch$/)],
      },
    });
    expect(r.builds.find((b) => b.id === "vmrig_lab:build:c33c7969e3c9f247da13909c5851783d")).toMatchObject({
      checkout_id: "vmrig_lab:checkout:c33c7969e3c9f247da13909c5851783d",
      architecture: "arm64",
      config_name: "tinyconfig+guest-arm64-64k.config",
      comment: expect.stringContaining("+fuse-readdir-cap-max-io.patch"),
    });
    expect(testOf(r, "/built-arm64-64k+cap/ok").environment).toMatchObject({
      comment: "QEMU 10.0.2, TCG, aarch64, 64K pages on vm",
      misc: { arch: "aarch64", pageSize: "64K", accel: "tcg" },
    });
    // Debian 7.3 for x86 and for arm64: two builds of one checkout.
    const debian73 = r.builds.filter((b) => b.checkout_id === "vmrig_lab:debian:linux=7.3.4-1~bpo13+1");
    expect(debian73.map((b) => b.architecture)).toEqual(["x86_64", "arm64"]);
  });

  it("a merged run of two shards: each test's environment is its shard's host, with the shard", async () => {
    const r = runToKcidb(await load("e2e-shards/2026-12-02T23-54-09Z"), opts);
    expect(problems(r)).toEqual([]);
    expect(testOf(r, "/debian-6.18.15/uname")).toMatchObject({
      status: "FAIL",
      misc: { vmrig: { met: false } },
      environment: { misc: { host: "vm", cpu: "AMD EPYC", shard: 1, qemu: "10.0.2", accel: "tcg" } },
    });
    expect(testOf(r, "/debian-7.3/uname").environment.misc).toMatchObject({ shard: 2 });
  });

  it("an origin KCIDB would refuse is refused before anything is made", async () => {
    const run = await load("keep/2026-12-02T18-55-37Z");
    expect(() => runToKcidb(run, { ...opts, origin: "Lab-1" })).toThrow(/origin "Lab-1"/);
  });
});

describe("kcidbStatus and testPath", () => {
  const outcomes: Array<[CellOutcome, string]> = [
    [{ kind: "pass" }, "PASS"],
    [{ kind: "errno", errno: "EIO", mountHealthy: false }, "FAIL"],
    [{ kind: "fail", detail: "x" }, "FAIL"],
    [{ kind: "short", seen: 1, expected: 2 }, "FAIL"],
    [{ kind: "hang", what: "read", wedged: true }, "FAIL"],
    [{ kind: "crash", title: "BUG", excerpt: "" }, "FAIL"],
    [{ kind: "boot-fail", reason: "no init" }, "FAIL"],
    [{ kind: "skip", reason: "n/a" }, "SKIP"],
    [{ kind: "infra", reason: "page size" }, "ERROR"],
    [{ kind: "not-run", reason: "interrupted" }, "MISS"],
  ];
  it.each(outcomes)("%j is %s", (o, status) => expect(kcidbStatus(o)).toBe(status));

  it("paths keep KCIDB's alphabet: dots split only workload and test case", () => {
    expect(testPath("getdents swiotlb", "w/t.case:1")).toBe("vmrig.getdents_swiotlb.w.t_case_1");
    expect(testPath("s", "")).toBe("vmrig.s._");
  });
});

describe("vmrig export kcidb (CLI)", () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "vmrig-kcidb-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const vmrig = (...args: string[]) =>
    execa("node", ["--import", "tsx", path.join(repoRoot, "harness/cli.ts"), ...args], {
      reject: false,
      cwd: repoRoot,
    });

  it(
    "writes the newest run of each scenario directory as one report; URLs only for files on disk, gzipped ones as .gz",
    { timeout: 60_000 },
    async () => {
      // A results root with the two runs; of keep's row, the console is there, the QEMU command line
      // was gzipped by `vmrig gc` and the other logs were pruned.
      const root = path.join(tmp, "results");
      for (const s of ["keep", "getdents-swiotlb-debian"])
        cpSync(path.join(runsRoot, s), path.join(root, s), { recursive: true });
      const row = path.join(root, "keep/2026-12-02T18-55-37Z/deb73");
      mkdirSync(row);
      writeFileSync(path.join(row, "console.log"), "vmrig-guest: ready\n");
      writeFileSync(path.join(row, "qemu-cmdline.txt.gz"), gzipSync("qemu-system-x86_64 ...\n"));
      const out = path.join(tmp, "kcidb.json");
      const r = await vmrig(
        "export",
        "kcidb",
        path.join(root, "keep"),
        path.join(root, "getdents-swiotlb-debian"),
        "-o",
        out,
      );
      expect(r.exitCode).toBe(0);
      const report = JSON.parse(readFileSync(out, "utf8")) as KcidbReport;
      expect(problems(report)).toEqual([]);
      expect(report.tests).toHaveLength(2 + 6);
      // Debian 7.3 cloud-amd64 ran in both runs: one build, one checkout.
      expect(report.builds.map((b) => b.id)).toEqual([
        "vmrig:debian:linux-image-7.3.4+deb13-cloud-amd64=7.3.4-1~bpo13+1",
        "vmrig:debian:linux-image-6.18.15+deb13-cloud-amd64=6.18.15-1~bpo13+1",
      ]);
      const kallsyms = report.tests[0]!;
      expect(kallsyms.id).toBe("vmrig:keep/2026-12-02T18-55-37Z/deb73/kallsyms");
      expect(kallsyms.log_url).toBe(`file://${path.join(row, "console.log")}`);
      expect(kallsyms.output_files).toEqual([
        { name: "qemuCmdline.txt.gz", url: `file://${path.join(row, "qemu-cmdline.txt.gz")}` },
      ]);
      // That run kept no files at all here: no URL to a file that is not there.
      const getdents = report.tests.find((t) => t.id.includes("getdents-swiotlb-debian"))!;
      expect(getdents.log_url).toBeUndefined();
      expect(getdents.output_files).toEqual([]);
    },
  );

  it("bad input exits 2 naming the option or the path, and writes nothing", async () => {
    const out = path.join(tmp, "never.json");
    const run = path.join(runsRoot, "keep");
    const cases: Array<[string[], RegExp]> = [
      [[run, "--origin", "Lab-1"], /--origin "Lab-1"/],
      [[run, "--artifacts-url", "not a url"], /--artifacts-url "not a url" is not a URL/],
      [[path.join(tmp, "missing")], /missing: no such run directory/],
      [[fixtures], /neither a vmrig run directory nor a scenario directory/],
    ];
    // Started together: each is a node process loading the CLI, seconds apiece on a loaded host.
    const runs = await Promise.all([
      ...cases.map(([args]) => vmrig("export", "kcidb", ...args, "-o", out)),
      vmrig("export", "junit", run),
    ]);
    runs.forEach((r, i) =>
      expect({ code: r.exitCode, stderr: r.stderr }).toEqual({
        code: 2,
        stderr: expect.stringMatching(cases[i]?.[1] ?? /unknown export format "junit"/),
      }),
    );
    expect(existsSync(out)).toBe(false);
  }, 120_000);
});
