// The layers of harness/ (.dependency-cruiser.cjs): no import cycle, and no import from a lower
// layer to a higher one. dependency-cruiser reads the sources (type-only imports included); nothing runs.
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { cruise, type ICruiseResult, type IViolation } from "dependency-cruiser";
import extractDepcruiseOptions from "dependency-cruiser/config-utl/extract-depcruise-options";
import extractTSConfig from "dependency-cruiser/config-utl/extract-ts-config";
import { repoRoot } from "../../harness/util/paths.ts";

async function cruiseHarness(): Promise<ICruiseResult> {
  const options = await extractDepcruiseOptions(path.join(repoRoot, ".dependency-cruiser.cjs"));
  const tsConfigFile = path.join(repoRoot, "tsconfig.json");
  const r = await cruise(
    ["harness"],
    { ...options, baseDir: repoRoot, tsConfig: { fileName: tsConfigFile } },
    undefined,
    { tsConfig: extractTSConfig(tsConfigFile) },
  );
  return r.output as ICruiseResult;
}

function describeViolation(v: IViolation): string {
  const cycle = v.cycle?.length ? ` (cycle: ${[v.from, ...v.cycle.map((c) => c.name)].join(" -> ")})` : "";
  return `${v.from} -> ${v.to}: ${v.rule.name}${cycle}`;
}

async function harnessSources(dir = path.join(repoRoot, "harness")): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await harnessSources(p)));
    else if (e.name.endsWith(".ts")) out.push(path.relative(repoRoot, p).split(path.sep).join("/"));
  }
  return out;
}

describe("harness/ layers", () => {
  it("no cycle, no upward import, every file in a layer", { timeout: 120_000 }, async () => {
    const result = await cruiseHarness();
    // The check must see every source file and its imports, type-only ones too, or it proves nothing.
    const seen = new Set(result.modules.map((m) => m.source));
    expect((await harnessSources()).filter((f) => !seen.has(f))).toEqual([]);
    const deps = (from: string) => result.modules.find((m) => m.source === from)?.dependencies ?? [];
    expect(deps("harness/cli.ts").map((d) => d.resolved)).toContain("harness/commands/nightly.ts");
    const typeOnly = deps("harness/run/schedule/rows.ts").find((d) => d.resolved === "harness/run/run-env.ts");
    expect(typeOnly?.dependencyTypes).toContain("type-only");

    const violations = result.summary.violations.map(describeViolation);
    expect(violations, `layer violations:\n${violations.join("\n")}`).toEqual([]);
  });
});
