// Whether apt's sources enable bookworm-backports, read as apt reads them: real files from a
// Debian 12 machine, and the forms that only look like it (a comment, Enabled: no, deb-src).
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { sourcesEnableSuite } from "../../harness/commands/setup-packages.ts";

const fixture = (name: string) => readFileSync(path.resolve("test/fixtures/apt-sources", name), "utf8");

describe("apt sources", () => {
  it("reads Debian's deb822 file and vmrig's own", () => {
    const debian = fixture("debian.sources");
    expect(sourcesEnableSuite(debian, "bookworm-security", true)).toBe(true);
    expect(sourcesEnableSuite(debian, "bookworm-backports", true)).toBe(false);
    expect(sourcesEnableSuite(fixture("vmrig-bookworm-backports.sources"), "bookworm-backports", true)).toBe(true);
  });

  it("does not count a deb822 stanza that is disabled, for sources only, or commented out", () => {
    const vmrig = fixture("vmrig-bookworm-backports.sources");
    expect(sourcesEnableSuite(vmrig + "Enabled: no\n", "bookworm-backports", true)).toBe(false);
    expect(sourcesEnableSuite(vmrig.replace("Types: deb", "Types: deb-src"), "bookworm-backports", true)).toBe(false);
    const commented = vmrig.replace("Suites: bookworm-backports", "# Suites: bookworm-backports");
    expect(sourcesEnableSuite(commented, "bookworm-backports", true)).toBe(false);
  });

  it.each([
    ["deb http://deb.debian.org/debian bookworm-backports main", true],
    [
      "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main",
      true,
    ],
    ["# deb http://deb.debian.org/debian bookworm-backports main", false],
    ["#deb http://deb.debian.org/debian bookworm-backports main", false],
    ["deb-src http://deb.debian.org/debian bookworm-backports main", false],
    ["deb http://deb.debian.org/debian bookworm main # not bookworm-backports", false],
  ])("sources.list line %j enables bookworm-backports: %s", (line, enabled) => {
    expect(sourcesEnableSuite(`${line}\n`, "bookworm-backports", false)).toBe(enabled);
  });
});
