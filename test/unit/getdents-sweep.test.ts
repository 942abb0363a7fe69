import { describe, expect, it } from "vitest";
import { judgeSweep, parseSweep } from "../../harness/workloads/getdents-sweep.ts";
import { cellLabel } from "../../harness/classify/labels.ts";

// Captured from Debian 6.18.15 with swiotlb=force through the ACCESS_PLATFORM relay (5000 entries).
const captured = [4096, 65536, 131072, 262144, 524288, 1048576, 2097152]
  .map((b) =>
    b <= 262144
      ? `{"op":"getdents","bufferSize":${b},"entries":5000,"calls":3,"ok":true}`
      : '{"op":"getdents","ok":false,"errno":"ENOMEM","errnoNum":12,"syscall":"getdents64","entries":0,' +
        `"bufferSize":${b}}`,
  )
  .join("\n");

describe("getdentsSweep", () => {
  it("names the first size that failed and the largest that worked", () => {
    const j = judgeSweep(parseSweep(captured, [4096, 65536, 131072, 262144, 524288, 1048576, 2097152]), 5000);
    expect(j).toMatchObject({
      kind: "errno",
      errno: "ENOMEM",
      at: "512K",
      detail: "getdents64 ENOMEM at 512K (largest that worked: 256K)",
    });
    expect(cellLabel({ kind: "errno", errno: "ENOMEM", at: "512K", mountHealthy: true })).toBe(
      "-ENOMEM at 512K (mount healthy)",
    );
  });
  it("passes when every size lists every entry", () => {
    const lines = [4096, 1048576].map((b) => `{"op":"getdents","bufferSize":${b},"entries":10,"ok":true}`).join("\n");
    expect(judgeSweep(parseSweep(lines, [4096, 1048576]), 10)).toMatchObject({
      kind: "outcome",
      outcome: { kind: "pass", detail: "all 2 sizes, up to 1M" },
    });
  });
  it("calls a short listing without an errno SHORT, never a pass; more entries than the host has is FAIL", () => {
    const lines = [4096, 65536]
      .map((b, i) => `{"op":"getdents","bufferSize":${b},"entries":${[10, 7][i]},"ok":true}`)
      .join("\n");
    expect(judgeSweep(parseSweep(lines, [4096, 65536]), 10)).toMatchObject({
      kind: "outcome",
      outcome: {
        kind: "short",
        seen: 7,
        expected: 10,
        detail: "saw 7 of 10 entries; at 64K (largest that worked: 4K)",
      },
    });
    const extra = `{"op":"getdents","bufferSize":4096,"entries":12,"ok":true}`;
    expect(judgeSweep(parseSweep(extra, [4096]), 10)).toMatchObject({
      kind: "outcome",
      outcome: { kind: "fail", detail: "saw 12 entries, the host has 10; at 4K (largest that worked: none)" },
    });
  });
});
