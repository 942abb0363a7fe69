// Path kernels are checked before any kernel is fetched or built, and a problem names where the
// scenario wrote the path: real kernel heads (Debian 7.3's x86 and arm64 vmlinuz), /etc/passwd.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseScenario } from "../../harness/scenario/load.ts";
import { checkPathKernels } from "../../harness/kernels/path.ts";
import { kernelArch } from "../../harness/scenario/platform.ts";
import { freshCachePerTest } from "../helpers/env.ts";

const heads = path.resolve("test/fixtures/kernel-heads");

describe("path kernels at load", () => {
  const dir = freshCachePerTest("vmrig-path-kernels-");

  async function problemOf(kernel: string, extra = ""): Promise<string | undefined> {
    const file = path.join(dir(), "s.yaml");
    const text = `name: p\nkernels:\n  k: { path: { kernel: ${kernel}${extra} } }\nworkloads:\n  - { id: w, shell: { command: "true" } }\n`;
    writeFileSync(file, text);
    const s = parseScenario(text, file);
    return checkPathKernels(s.kernels.map((entry) => ({ entry, arch: kernelArch(s, entry) }))).then(
      () => undefined,
      (e: Error) => e.message,
    );
  }

  it("accepts a real bzImage head for an x86_64 row", async () => {
    copyFileSync(path.join(heads, "vmlinuz-7.3.4-cloud-amd64.head"), path.join(dir(), "bzImage"));
    expect(await problemOf("bzImage")).toBeUndefined();
  });

  it.each([
    ["/etc/passwd", "", "3:24 kernels.k.path.kernel: /etc/passwd is not a kernel image"],
    ["/nonexistent", "", "3:24 kernels.k.path.kernel: /nonexistent does not exist"],
    [".", "", "3:24 kernels.k.path.kernel: "],
    ["arm64", "", "3:24 kernels.k.path.kernel: "],
    ["bzImage", ", modules: nomods", "3:42 kernels.k.path.modules: "],
  ])("refuses %s%s with the scenario's file:line", async (kernel, extra, message) => {
    copyFileSync(path.join(heads, "vmlinuz-7.3.4-cloud-amd64.head"), path.join(dir(), "bzImage"));
    copyFileSync(path.join(heads, "vmlinuz-7.3.4-arm64.head"), path.join(dir(), "arm64"));
    mkdirSync(path.join(dir(), "sub"));
    const problem = await problemOf(kernel, extra);
    expect(problem).toContain(`s.yaml:${message}`);
  });

  it("says an arm64 Image is not for an x86_64 row", async () => {
    copyFileSync(path.join(heads, "vmlinuz-7.3.4-arm64.head"), path.join(dir(), "arm64"));
    expect(await problemOf("arm64")).toMatch(/arm64 is an aarch64 kernel; the row is x86_64$/);
  });
});
