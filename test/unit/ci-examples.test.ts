// The sharded CI definitions in docs/examples are parsed (the yaml package) and held to what
// docs/sharding.md promises: shards 1..N exactly, each shard's run directories kept, a merge that
// waits for every shard and is one `vmrig merge`, the KCIDB export, a submit only with a secret.
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { commandHelp } from "../../harness/cli-help.ts";
import { repoRoot } from "../../harness/util/paths.ts";

type Obj = Record<string, unknown>;
const load = (name: string) => parse(readFileSync(path.join(repoRoot, "docs/examples", name), "utf8")) as Obj;
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** The vmrig command lines of a script: `node bin/vmrig.js <command> ...` or `vmrig <command> ...`. */
const vmrigCommands = (script: string, command: string) =>
  script
    .split("\n")
    .filter((l) => new RegExp(`(bin/vmrig\\.js|\\bvmrig) ${command}\\b`).test(l))
    .map((l) => l.trim());

/** Every --flag of a command line is one `vmrig <command> --help` documents. */
function expectKnownFlags(line: string, help: string): void {
  for (const flag of line.match(/(?<=\s)--[a-z-]+/g) ?? []) expect(help).toContain(flag);
}

/** `--results DIR` of a merge line: where the merged runs (and index.html) are written. */
const resultsDir = (mergeLine: string) => /--results\s+(\S+)/.exec(mergeLine)?.[1]?.replace(/\/$/, "");

describe("docs/examples/github-actions-sharded.yml", () => {
  const wf = load("github-actions-sharded.yml");
  const jobs = wf.jobs as Record<string, Obj>;
  const steps = (job: string): Array<Obj & { run: string }> =>
    (jobs[job]!.steps as Obj[]).map((s) => ({ ...s, run: typeof s.run === "string" ? s.run : "" }));
  const shardJob = Object.keys(jobs).find((j) => steps(j).some((s) => /vmrig\.js run .*--shard/.test(s.run)))!;
  const mergeJob = Object.keys(jobs).find((j) => steps(j).some((s) => vmrigCommands(s.run, "merge").length))!;

  it("the matrix covers shards 1..N exactly, N being the --shard K/N of the run", () => {
    const run = steps(shardJob).find((s) => s.run.includes("--shard"))!.run;
    const n = Number(/--shard \$\{\{ matrix\.shard \}\}\/(\d+)/.exec(run)?.[1]);
    expect(n).toBeGreaterThan(1);
    const matrix = (jobs[shardJob]!.strategy as { matrix: { shard: number[] } }).matrix.shard;
    expect([...matrix].sort((a, b) => a - b)).toEqual(range(n));
    expect((jobs[shardJob]!.strategy as Obj)["fail-fast"]).toBe(false);
  });

  it("each shard uploads its results root under its own artifact name, even when a cell failed", () => {
    const results = String((jobs[shardJob]!.env as Obj).VMRIG_RESULTS);
    const upload = steps(shardJob).find((s) => String(s.uses).startsWith("actions/upload-artifact"))!;
    const w = upload.with as Obj;
    expect(String(w.path).replace(/\/$/, "")).toBe(results);
    expect(String(w.name)).toContain("${{ matrix.shard }}");
    expect(upload.if).toBe("always()");
  });

  it("the merge job waits for every shard, downloads them all and is one vmrig merge, its exit code kept", () => {
    const job = jobs[mergeJob]!;
    expect([job.needs].flat()).toContain(shardJob);
    const download = steps(mergeJob).find((s) => String(s.uses).startsWith("actions/download-artifact"))!;
    const uploadName = String(
      (steps(shardJob).find((s) => String(s.uses).startsWith("actions/upload-artifact"))!.with as Obj).name,
    );
    expect(uploadName.replace("${{ matrix.shard }}", "*")).toBe((download.with as Obj).pattern);
    const merge = steps(mergeJob).find((s) => vmrigCommands(s.run, "merge").length)!;
    // One command, no shell around it, and a failure stays the job's.
    expect(merge.run.trim().split("\n")).toHaveLength(1);
    expect(merge.run).not.toMatch(/[;&|]|\bif\b/);
    expect(merge.run).toContain(`merge ${String((download.with as Obj).path).replace(/\/$/, "")}`);
    expect(merge["continue-on-error"]).toBeUndefined();
    expect(merge.if).toBeUndefined();
  });

  it("exports KCIDB from the merged runs and publishes them; a submit only with the KCIDB secret", () => {
    const all = steps(mergeJob);
    const merged = resultsDir(vmrigCommands(all.find((s) => s.run.includes(" merge "))!.run, "merge")[0]!)!;
    const exportLine = all.flatMap((s) => vmrigCommands(s.run, "export kcidb"))[0]!;
    expect(exportLine).toContain(`export kcidb ${merged}/*/`);
    expectKnownFlags(exportLine, commandHelp.export!);
    const out = /-o (\S+)/.exec(exportLine)![1]!;
    const submit = all.find((s) => s.run.includes("kcidb-submit"))!;
    expect(submit.run).toMatch(new RegExp(`kcidb-submit" -p "\\$KCIDB_PROJECT" -t "\\$KCIDB_TOPIC" < ${out}$`, "m"));
    expect(String(submit.if)).toContain("env.KCIDB_CREDENTIALS != ''");
    expect(String((jobs[mergeJob]!.env as Obj).KCIDB_CREDENTIALS)).toBe("${{ secrets.KCIDB_CREDENTIALS }}");
    const pages = all.find((s) => String(s.uses).startsWith("actions/upload-pages-artifact"))!;
    expect(String((pages.with as Obj).path).replace(/\/$/, "")).toBe(merged);
    // Steps after the merge run whatever its verdict (a status function in `if`), but not when cancelled.
    const after = all.slice(all.findIndex((s) => s.run.includes(" merge ")) + 1);
    for (const s of after) expect(String(s.if)).toMatch(/!cancelled\(\)/);
  });
});

describe("docs/examples/gitlab-ci-sharded.yml", () => {
  const ci = load("gitlab-ci-sharded.yml");
  const job = (name: string) => ci[name] as Obj;
  const script = (name: string) => ([job(name).script].flat() as string[]).join("\n");
  const stages = ci.stages as string[];
  const needs = (name: string) => (job(name).needs as Array<{ job: string; artifacts: boolean }>).map((n) => n.job);

  it("parallel:matrix covers shards 1..N exactly, N being the --shard K/N of the run", () => {
    const n = Number(/--shard "\$SHARD\/(\d+)"/.exec(script("shard"))?.[1]);
    expect(n).toBeGreaterThan(1);
    const matrix = (job("shard").parallel as { matrix: Array<{ SHARD: string[] }> }).matrix;
    expect(matrix).toHaveLength(1);
    expect(matrix[0]!.SHARD.map(Number).sort((a, b) => a - b)).toEqual(range(n));
  });

  it("each shard keeps its own results root as artifacts, even when a cell failed", () => {
    const results = String((job("shard").variables as Obj).VMRIG_RESULTS);
    expect(results).toContain("$SHARD");
    const artifacts = job("shard").artifacts as { when: string; paths: string[] };
    expect(artifacts.when).toBe("always");
    expect(artifacts.paths.map((p) => `$CI_PROJECT_DIR/${p.replace(/\/$/, "")}`)).toContain(results);
  });

  it("merge runs after every shard, with their artifacts, and is one vmrig merge", () => {
    expect(stages.indexOf(String(job("merge").stage))).toBeGreaterThan(stages.indexOf(String(job("shard").stage)));
    expect(job("merge").needs).toEqual([{ job: "shard", artifacts: true }]);
    expect(job("merge").when).toBe("always");
    const lines = vmrigCommands(script("merge"), "merge");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("merge shards/");
    expect(lines[0]).not.toMatch(/[;&|]/);
    expect((job("merge").artifacts as { paths: string[] }).paths).toContain(`${resultsDir(lines[0]!)}/`);
  });

  it("exports KCIDB from the merged runs, submits only with the KCIDB secret, and Pages serves the merge", () => {
    const merged = resultsDir(vmrigCommands(script("merge"), "merge")[0]!)!;
    expect(merged).toBe("public");
    expect(needs("kcidb")).toContain("merge");
    const exportLine = vmrigCommands(script("kcidb"), "export kcidb")[0]!;
    expect(exportLine).toContain(`export kcidb ${merged}/*/`);
    expectKnownFlags(exportLine, commandHelp.export!);
    const out = /-o (\S+)/.exec(exportLine)![1]!;
    expect((job("kcidb").artifacts as { paths: string[] }).paths).toContain(out);
    expect(script("kcidb-submit")).toContain(`kcidb-submit -p "$KCIDB_PROJECT" -t "$KCIDB_TOPIC" < ${out}`);
    expect(job("kcidb-submit").rules).toEqual([{ if: "$KCIDB_CREDENTIALS", when: "always" }]);
    expect(needs("pages")).toEqual(expect.arrayContaining(["merge", "kcidb"]));
    expect((job("pages").artifacts as { paths: string[] }).paths).toEqual([`${merged}/`]);
  });
});
