import { describe, expect, it } from "vitest";
import { declaredNames, inFiringOrder } from "../../harness/scenario/faults.ts";

describe("declaredNames", () => {
  it("takes the string key of each mapping and skips everything else", () => {
    expect(declaredNames([{ id: "a" }, { id: 3 }, "b", null, { tag: "c" }, { id: "d" }], "id")).toEqual(
      new Set(["a", "d"]),
    );
    expect(declaredNames(undefined, "id")).toEqual(new Set());
  });
});

describe("inFiringOrder", () => {
  it("sorts by `after` in ms (numbers as they are, durations parsed), keeps file indexes, unreadable first", () => {
    const faults = [{ after: 5000 }, { after: "2s" }, "junk", { after: "soon" }];
    expect(inFiringOrder(faults).map(({ i, ms }) => [i, ms])).toEqual([
      [2, undefined],
      [3, undefined],
      [1, 2000],
      [0, 5000],
    ]);
  });
});
