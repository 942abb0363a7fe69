import { describe, expect, it } from "vitest";
import { notInArchive } from "../../harness/qemu/provision.ts";
import type { DebPackage } from "../../harness/debian/control.ts";

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
