// When a failed boot earns one more attempt: only a clean console (captured consoles).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { bootWorthRetrying } from "../../harness/run/boot-retry.ts";

const consoleLog = (name: string) =>
  readFileSync(path.join(import.meta.dirname, "..", "fixtures", "consoles", name), "utf8");

describe("bootWorthRetrying", () => {
  it("retries a boot that ran out of time with nothing wrong on the console", () => {
    expect(
      bootWorthRetrying({ kind: "boot-fail", reason: "no SSH answer", console: consoleLog("arm64-clean.log") }),
    ).toBe(true);
    expect(
      bootWorthRetrying({ kind: "boot-fail", reason: "no SSH answer", console: consoleLog("x86-clean.log") }),
    ).toBe(true);
  });

  it("never retries a kernel that crashed, panicked or whose init failed, nor an infrastructure error", () => {
    expect(
      bootWorthRetrying({ kind: "boot-fail", reason: "no SSH answer", console: consoleLog("x86-no-root-panic.log") }),
    ).toBe(false);
    expect(
      bootWorthRetrying({ kind: "boot-fail", reason: "no SSH answer", console: consoleLog("x86-null-deref-1.log") }),
    ).toBe(false);
    expect(bootWorthRetrying({ kind: "boot-fail", reason: "guest kernel panicked (pvpanic)", console: "" })).toBe(
      false,
    );
    expect(bootWorthRetrying({ kind: "boot-fail", reason: "QEMU exited (status 1)", console: "" })).toBe(false);
    expect(
      bootWorthRetrying({ kind: "boot-fail", reason: "guest init failed: modprobe virtiofs: not found", console: "" }),
    ).toBe(false);
    expect(bootWorthRetrying({ kind: "infra", reason: "virtiofsd[share] exited (status 1)", console: "" })).toBe(false);
  });
});
