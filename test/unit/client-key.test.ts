// ssh2's ed25519 generator sometimes strips a leading zero byte of the public key: the pair it
// returns is one its own parser refuses. vmrig's client key must never be such a pair.
import ssh2 from "ssh2";
import { describe, expect, it } from "vitest";
import { generateClientKey } from "../../harness/guest/ssh.ts";

const { utils } = ssh2;
type Pair = ReturnType<typeof utils.generateKeyPairSync>;
const ssh2Pair = (): Pair => utils.generateKeyPairSync("ed25519", { comment: "vmrig" });
const parses = (k: string) => !(utils.parseKey(k) instanceof Error);

/** A pair from ssh2 itself that ssh2 cannot parse (one in 256; 5000 tries all but never miss). */
function malformedPair(): Pair {
  for (let i = 0; i < 5000; i++) {
    const k = ssh2Pair();
    if (!parses(k.private) || !parses(k.public)) return k;
  }
  throw new Error("ssh2 generated 5000 good pairs in a row: its generator was fixed?");
}

describe("generateClientKey", () => {
  it("skips a pair ssh2 generated but cannot parse, and returns the next good one", () => {
    const bad = malformedPair();
    const good = ssh2Pair();
    const queue = [bad, good];
    expect(generateClientKey(() => queue.shift()!)).toEqual({ privateKey: good.private, publicKey: good.public });
  });

  it("gives up with a clear error when ssh2 keeps generating pairs it cannot parse", () => {
    const bad = malformedPair();
    expect(() => generateClientKey(() => bad)).toThrow(/16 ed25519 key pairs in a row that it cannot parse/);
  });

  it("only returns pairs ssh2 can load, over many draws", () => {
    for (let i = 0; i < 2000; i++) {
      const k = generateClientKey();
      expect(parses(k.privateKey) && parses(k.publicKey)).toBe(true);
    }
  });
});
