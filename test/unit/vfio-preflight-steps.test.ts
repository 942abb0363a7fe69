import { describe, expect, it } from "vitest";
import { changesNeedingRoot, lockedMemoryEnough } from "../../harness/vfio/preflight.ts";
import type { VfioSpec } from "../../harness/types.ts";

const pci: VfioSpec = { devices: [{ kind: "pci", host: "0000:01:00.0" }] };
const mdev: VfioSpec = { devices: [{ kind: "mdev", parent: "mtty", type: "mtty-2" }] };

describe("lockedMemoryEnough", () => {
  it("root is never limited; an unreadable limit is unknown; otherwise the limit must cover the pinned bytes", () => {
    expect(lockedMemoryEnough(0, 1, 100)).toBe("root");
    expect(lockedMemoryEnough(1000, undefined, 100)).toBe("unknown");
    expect(lockedMemoryEnough(1000, "unlimited", 100)).toBe(true);
    expect(lockedMemoryEnough(1000, 100, 100)).toBe(true);
    expect(lockedMemoryEnough(1000, 99, 100)).toBe(false);
  });
});

describe("changesNeedingRoot", () => {
  it("names binding, a changed dma_entry_limit and mdev creation, in that order", () => {
    expect(changesNeedingRoot(mdev, true, { current: 65535, requested: 1000 })).toEqual([
      "binding devices to vfio-pci",
      "setting dma_entry_limit to 1000",
      "creating mediated devices",
    ]);
  });
  it("is empty when nothing changes: already bound, the limit already as requested, no mdev", () => {
    expect(changesNeedingRoot(pci, false, { current: 1000, requested: 1000 })).toEqual([]);
    expect(changesNeedingRoot(pci, false, { current: 1000 })).toEqual([]);
    expect(changesNeedingRoot(pci, false, { requested: 1000 })).toEqual(["setting dma_entry_limit to 1000"]);
  });
});
