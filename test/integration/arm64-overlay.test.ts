// arm64 guests under TCG on this x86 host, with a virtio-fs share logging at debug level:
// overlayfs over virtio-fs on Debian 7.3 arm64-16k fails (getdents64 ENOMEM; busybox ls sees an
// empty directory: SHORT; virtiofsd refused READDIRPLUS with -12); a 64K build of 7.3 with the
// shipped max_read/max_write cap passes; a row that declares 64K pages for a 4K kernel is INFRA
// with the reason; a sysrq crash on arm64 is told from the console (ttyAMA0). One scenario,
// three boots (30-45 s of wall time here); the 64K kernel comes from the build cache.
import { describe, expect, it } from "vitest";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { silentProgress, discardOutput, type Progress } from "../../harness/run/progress.ts";
import { renderTerminalTable } from "../../harness/report/index.ts";
import { repoRoot } from "../../harness/util/paths.ts";
import { processesMatching } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

// Removed afterwards; a failed test's guest consoles are kept (the path is printed).
const tmp = testScratch("vmrig-test-arm64-");
const quiet: Progress = silentProgress;
const sink = discardOutput;
const kernels = path.join(repoRoot, "kernels");

describe("arm64 guests, page sizes and overlayfs over virtio-fs (TCG)", () => {
  it("16K Debian: ENOMEM + virtiofsd's refusal; 64K capped build: PASS; 64K declared on a 4K kernel: INFRA; sysrq crash seen on ttyAMA0", async () => {
    const file = path.join(tmp, "arm64-overlay.yaml");
    writeFileSync(
      file,
      `name: arm64-overlay
machine: { arch: aarch64, memory: 1G, cpus: 2 }
kernels:
  arm64t-debian-16k:
    debian: { version: "7.3", flavour: arm64-16k }
    pageSize: 16K
    expect: { overlay: ENOMEM, overlay-ls: SHORT, sysrq-crash: CRASH }
  arm64t-built-64k+cap:
    build:
      source: "debian:linux-source-7.3"
      config: [${path.join(kernels, "guest-arm64-64k.config")}]
      patches: [${path.join(kernels, "patches", "fuse-readdir-cap-max-io.patch")}]
    pageSize: 64K
    expect: { sysrq-crash: CRASH }
  arm64t-debian-4k-says-64k:
    debian: { version: "7.3", flavour: arm64 }
    pageSize: 64K
    expect: { overlay: INFRA, overlay-ls: INFRA, sysrq-crash: INFRA }
shares:
  - { tag: share, log: debug }
workloads:
  - { id: overlay, overlayReaddir: { share: share, entries: 2000, bufferSize: 32K } }
  - { id: overlay-ls, overlayReaddir: { share: share, entries: 2000, lister: ls } }
  - { id: sysrq-crash, shell: { command: "echo c > /proc/sysrq-trigger" } }
expect:
  default: PASS
`,
    );
    const { result, runDir, exitCode } = await runScenarioFile(file, {
      resultsRoot: path.join(tmp, "results"),
      progress: quiet,
      out: sink,
    });
    const table = renderTerminalTable(result, { color: false, width: 220 });
    writeFileSync(path.join(tmp, "table.txt"), table);
    const [r16k, r64k, wrong] = result.rows;

    // 16K: the silent empty listing, told by the count, the errno and virtiofsd's log.
    const o16 = r16k!.cells[0]!;
    expect(r16k).toMatchObject({ arch: "aarch64", pageSize: "16K", accel: "tcg" });
    expect(o16.outcome).toMatchObject({ kind: "errno", errno: "ENOMEM", mountHealthy: true });
    expect((o16.outcome as { detail: string }).detail).toMatch(/busybox ls: exit 0, 0 entries/);
    expect(o16.notes).toEqual([expect.stringMatching(/^virtiofsd refused READDIRPLUS \(-12\) x \d+$/)]);
    expect(o16.evidence["virtiofsd-share"]).toMatchObject({
      refusals: [expect.objectContaining({ opcode: "READDIRPLUS", errno: "ENOMEM" })],
    });

    // busybox ls exits 0 with nothing listed: only the count against the host tells.
    expect(r16k!.cells[1]!.outcome).toMatchObject({ kind: "short", seen: 0, expected: 2000 });

    // 64K with the cap: every entry, nothing refused.
    expect(r64k).toMatchObject({ arch: "aarch64", pageSize: "64K" });
    expect(r64k!.cells[0]!.outcome).toMatchObject({
      kind: "pass",
      detail: expect.stringMatching(/^2000 entries; busybox ls: exit 0, 2000 entries/),
    });
    expect(r64k!.cells[0]!.notes ?? []).toEqual([]);
    expect(r64k!.cells[1]!.outcome).toMatchObject({ kind: "pass" });

    // Crash detection on arm64 from the console.
    for (const row of [r16k!, r64k!]) {
      expect(row.cells[2]!.outcome, row.label).toMatchObject({ kind: "crash", title: expect.stringMatching(/sysrq/i) });
    }

    // The page-size assertion: INFRA with the reason, before any workload ran.
    expect(wrong!.evidence.pageSize).toBe(4096);
    for (const c of wrong!.cells) {
      expect(c.outcome).toEqual({
        kind: "infra",
        reason: "page size mismatch: the scenario says 64K, the running kernel has 4K (4096 bytes)",
      });
    }

    expect(exitCode).toBe(0);
    expect(table).toContain("arm64t-debian-16k (aarch64, 16K pages)");
    expect(table).toContain("arm64t-built-64k+cap (aarch64, 64K pages)");
    expect(readFileSync(path.join(runDir, "arm64t-debian-16k", "qemu-cmdline.txt"), "utf8")).toMatch(
      /qemu-system-aarch64 .*console=ttyAMA0/,
    );
    expect(existsSync(path.join(runDir, "arm64t-debian-16k", "virtiofsd-share.log"))).toBe(true);
    // This run's processes only (scratch directories are named after the row labels): other
    // suites' guests may be running on the same host.
    expect(processesMatching(/(qemu-system|virtiofsd).*vmrig-arm64t-/)).toEqual([]);
  }, 1_800_000);
});
