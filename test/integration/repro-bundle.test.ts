// A real failing cell's repro bundle, run without vmrig: the default scenario's Debian 6.18.15
// row (getdents-1M ends -ENOMEM), its bundle copied elsewhere and repro.sh run with the
// repository and vmrig's cache hidden (a private mount namespace), the PATH without node.
import { beforeAll, describe, expect, it } from "vitest";
import { cpSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { execa } from "execa";
import type { RunResult } from "../../harness/types.ts";
import { runScenarioFile } from "../../harness/run/run-file.ts";
import { silentProgress, discardOutput } from "../../harness/run/progress.ts";
import { cacheDir, repoRoot } from "../../harness/util/paths.ts";
import { ownGuestProcesses, processesMatching } from "../helpers/processes.ts";
import { testScratch } from "../helpers/scratch.ts";

const tmp = testScratch("vmrig-test-repro-");
const PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

let run: { result: RunResult; runDir: string };
let bundle: string;

/** repro.sh from a copy of the bundle, cwd in the copy, the repository and the cache hidden under empty tmpfs. */
function runRepro(scratch: string) {
  mkdirSync(scratch, { recursive: true });
  const hide = [repoRoot, path.dirname(repoRoot), cacheDir()].map((d) => `mount -t tmpfs none '${d}'`).join("; ");
  return execa("unshare", ["--mount", "--propagation", "private", "bash", "-c", `${hide}; exec ./repro.sh`], {
    cwd: bundle,
    env: { PATH, TMPDIR: scratch, HOME: scratch },
    extendEnv: false,
    reject: false,
    all: true,
  });
}

beforeAll(async () => {
  run = await runScenarioFile(path.join(repoRoot, "scenarios/default.yaml"), {
    kernels: ["debian-6.18.15"],
    resultsRoot: path.join(tmp, "results"),
    progress: silentProgress,
    out: discardOutput,
  });
  const row = run.result.rows[0]!;
  const script = row.artifacts["repro-getdents-1M"];
  if (!script) throw new Error(`no repro bundle: ${JSON.stringify(row.cells.map((c) => c.notes))}`);
  bundle = path.join(tmp, "elsewhere", "repro");
  cpSync(path.dirname(path.join(run.runDir, script)), bundle, { recursive: true, verbatimSymlinks: true });
}, 300_000);

describe("repro bundle of the 6.18.15 getdents cell", () => {
  it("is listed for the -ENOMEM cell only, and names no file of the repository or the cache", () => {
    const row = run.result.rows[0]!;
    expect(row.cells.find((c) => c.workload === "getdents-1M")!.outcome).toMatchObject({ errno: "ENOMEM" });
    expect(Object.keys(row.artifacts).filter((k) => k.startsWith("repro-"))).toEqual(["repro-getdents-1M"]);
    const script = readFileSync(path.join(bundle, "repro.sh"), "utf8");
    for (const dir of [repoRoot, cacheDir(), run.runDir]) expect(script).not.toContain(dir);
    expect(readdirSync(path.join(bundle, "share/share/getdents-1M"))).toHaveLength(5000);
  });

  it("reproduces -ENOMEM on its own and leaves nothing running or on disk", async () => {
    const scratch = path.join(tmp, "scratch-run");
    const r = await runRepro(scratch);
    expect(r.all).toContain('"errno":"ENOMEM"');
    expect(r.all).toMatch(/^repro: REPRODUCED: ENOMEM \(the cell: ENOMEM\)$/m);
    expect(r.exitCode).toBe(0);
    expect(processesMatching(bundle)).toEqual([]);
    expect(processesMatching(scratch)).toEqual([]);
    expect(readdirSync(scratch)).toEqual([]);
  }, 600_000);

  it("stops QEMU, virtiofsd and the relay when interrupted while the guest boots", async () => {
    const scratch = path.join(tmp, "scratch-interrupted");
    const child = runRepro(scratch);
    child.stdout.on("data", (d: Buffer) => {
      if (String(d).includes("booting the guest")) setTimeout(() => child.kill("SIGTERM"), 2000);
    });
    const r = await child;
    expect(r.all).not.toContain("REPRODUCED");
    expect(r.exitCode).toBe(130);
    expect(processesMatching(bundle)).toEqual([]);
    expect(processesMatching(scratch)).toEqual([]);
    expect(readdirSync(scratch)).toEqual([]);
    expect(ownGuestProcesses()).toEqual([]);
  }, 120_000);
});
