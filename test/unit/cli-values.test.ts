// Options a command cannot work with: the real CLI says which and exits 2, and writes nothing.
import { execa } from "execa";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { existingDir, wholeNumber } from "../../harness/util/cli-values.ts";
import { freshCachePerTest } from "../helpers/env.ts";

const vmrig = (args: string[]) =>
  execa("node", ["--import", "tsx", path.resolve("harness/cli.ts"), ...args], { reject: false });

describe("option values", () => {
  const dir = freshCachePerTest("vmrig-cli-values-");

  it("takes whole numbers within bounds and names the option otherwise", () => {
    expect(wholeNumber("window", undefined, 7, 2)).toBe(7);
    expect(wholeNumber("window", "12", 7, 2)).toBe(12);
    expect(() => wholeNumber("window", "abc", 7, 2)).toThrow('--window takes a whole number of at least 2, got "abc"');
    expect(() => wholeNumber("repeat", "0", 1, 1)).toThrow("--repeat takes a whole number of at least 1");
    expect(() => wholeNumber("keep", "-3", 5)).toThrow('--keep takes a whole number, got "-3"');
    expect(() => wholeNumber("keep", "1e99", 5)).toThrow("whole number");
  });

  it("refuses a directory that is missing or a file", () => {
    expect(existingDir("results", dir())).toBe(dir());
    expect(() => existingDir("results", path.join(dir(), "nope"))).toThrow(/--results .*nope: no such directory/);
    expect(() => existingDir("results", "/etc/hostname")).toThrow("not a directory");
  });

  it.each([
    [["summary", "--results", "/nonexistent"], "--results /nonexistent: no such directory"],
    [["gc", "--results", "/nonexistent"], "--results /nonexistent: no such directory"],
    [["summary", "--window", "abc"], '--window takes a whole number of at least 2, got "abc"'],
    [["bisect", "--repeat", "abc", "scenarios/default.yaml"], '--repeat takes a whole number of at least 1, got "abc"'],
    [["run", "docs/examples"], "docs/examples is a directory, not a scenario file; it holds "],
  ])("vmrig %j exits 2 saying why", async (args, message) => {
    const r = await vmrig(args);
    expect(r.stderr).toContain(message);
    expect(r.exitCode).toBe(2);
  });

  it("baseline --clear of a scenario with no baseline exits 2 and writes nothing", async () => {
    const root = path.join(dir(), "results");
    mkdirSync(root);
    const r = await vmrig(["baseline", "--results", root, "--clear", "nosuch"]);
    expect(r.stderr).toContain("--clear nosuch: no baseline is pinned for it; none is pinned");
    expect(r.exitCode).toBe(2);
    expect(readdirSync(root)).toEqual([]);
    expect(existsSync(path.join(root, "baselines.json"))).toBe(false);
  });
});
