// The live console view on real captures (test/fixtures/consoles), fed the way console.log is
// read: in pieces of any size, cut anywhere, even inside a UTF-8 sequence.
import { afterEach, describe, expect, it } from "vitest";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ConsoleText } from "../../harness/qemu/console-text.ts";
import { FileTail } from "../../harness/qemu/console-tail.ts";
import { GUEST_READY_MARKER } from "../../harness/image/guest-protocol.ts";
import { withReadiness } from "../../harness/guest/boot.ts";

const fixture = (name: string) => readFileSync(path.join(import.meta.dirname, "..", "fixtures", "consoles", name));

/** Deterministic piece sizes 1..max (a tiny LCG: the same cuts on every run). */
function pieces(bytes: Buffer, max: number, seed = 7): Buffer[] {
  const out: Buffer[] = [];
  let x = seed;
  for (let at = 0; at < bytes.length;) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    const n = 1 + (x % max);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe("ConsoleText", () => {
  it("rebuilds a real console exactly from pieces of any size, and counts its bytes", () => {
    for (const name of ["x86-clean.log", "arm64-clean.log", "x86-7.3-sysrq-panic.log"]) {
      const bytes = fixture(name);
      for (const max of [1, 7, 4096]) {
        const c = new ConsoleText();
        for (const p of pieces(bytes, max)) c.appendBytes(p);
        c.end();
        expect(c.text(), `${name} /${max}`).toBe(bytes.toString("utf8"));
        expect(c.bytes).toBe(bytes.length);
        expect(c.length).toBe(bytes.toString("utf8").length);
      }
    }
  });

  it("decodes a UTF-8 character cut between two reads whole", () => {
    // A user-space line with a non-ASCII character, after real kernel lines.
    const bytes = Buffer.concat([fixture("x86-clean.log").subarray(0, 300), Buffer.from("préparé → ok\r\n")]);
    const c = new ConsoleText();
    for (const p of pieces(bytes, 2, 3)) c.appendBytes(p);
    c.end();
    expect(c.text()).toBe(bytes.toString("utf8"));
    expect(c.text()).not.toContain("\uFFFD");
  });

  it("resolves a waiter when its needle arrives, even cut across pieces, and not before", async () => {
    const bytes = Buffer.concat([fixture("x86-clean.log"), Buffer.from(`${GUEST_READY_MARKER}\r\n`)]);
    const end = bytes.indexOf(GUEST_READY_MARKER) + GUEST_READY_MARKER.length;
    const c = new ConsoleText();
    let seenAt = -1;
    let fed = 0;
    void c.waitFor(GUEST_READY_MARKER).then(() => (seenAt = fed));
    for (const p of pieces(bytes, 3)) {
      c.appendBytes(p);
      fed += p.length;
      await Promise.resolve(); // let the waiter's continuation run now
    }
    // Seen with the piece that completed the marker: no earlier, no later.
    expect(seenAt).toBeGreaterThanOrEqual(end);
    expect(seenAt).toBeLessThan(end + 3);
    // Already there: at once.
    await expect(c.waitFor("Linux version")).resolves.toBeUndefined();
  });

  it("keeps several waiters with needles of different lengths apart", async () => {
    const c = new ConsoleText();
    const seen: string[] = [];
    for (const n of ["Run /init as init process", "ready", "never printed"]) void c.waitFor(n).then(() => seen.push(n));
    for (const p of pieces(Buffer.concat([fixture("x86-clean.log"), Buffer.from("vmrig-guest: ready\r\n")]), 5)) {
      c.appendBytes(p);
      await Promise.resolve();
    }
    await Promise.resolve();
    expect(seen).toEqual(["Run /init as init process", "ready"]);
  });

  it("gives the text since an earlier offset, as appending goes on", () => {
    const bytes = fixture("x86-7.3-sysrq-panic.log");
    const text = bytes.toString("utf8");
    const c = new ConsoleText();
    const marks: number[] = [];
    for (const [i, p] of pieces(bytes, 97).entries()) {
      c.appendBytes(p);
      if (i % 5 === 0) marks.push(c.length);
      for (const m of marks.slice(-3)) expect(c.since(m)).toBe(text.slice(m, c.length));
    }
    expect(c.since(0)).toBe(text);
    expect(c.since(text.length + 10)).toBe("");
  });

  it("keeps at most about its limit in memory, with offsets still counted from the start", () => {
    const bytes = fixture("x86-clean.log");
    const text = bytes.toString("utf8");
    const c = new ConsoleText(4096);
    for (const p of pieces(bytes, 512)) c.appendBytes(p);
    expect(c.length).toBe(text.length);
    expect(c.text().length).toBeGreaterThanOrEqual(4096);
    expect(c.text().length).toBeLessThan(4096 + 512);
    expect(text.endsWith(c.text())).toBe(true);
    expect(c.since(text.length - 100)).toBe(text.slice(-100));
  });
});

describe("a whole vmrig boot as QEMU logged it", () => {
  const boot = fixture("x86-7.3-vmrig-boot.log");

  it("has its kernel command line whole, to the scenario's last word", () => {
    const line = boot
      .toString("utf8")
      .split("\n")
      .find((l) => l.includes("] Command line: "))!;
    expect(line).toMatch(/ vmrig\.authkey=[A-Za-z0-9+/]+=* swiotlb=force swiotlb=force,track_hiwater\r$/);
  });

  it("says whether the guest printed its ready marker when SSH did not answer", () => {
    const text = boot.toString("utf8");
    expect(withReadiness("no SSH answer within 240 s", text)).toBe(
      `no SSH answer within 240 s (the guest printed "${GUEST_READY_MARKER}": its network and sshd were started)`,
    );
    const before = text.slice(0, text.indexOf(GUEST_READY_MARKER));
    expect(withReadiness("no SSH answer within 240 s", before)).toBe(
      `no SSH answer within 240 s (the guest never printed "${GUEST_READY_MARKER}")`,
    );
  });

  it("wakes the boot's wait for the ready marker when its last piece is read", async () => {
    const c = new ConsoleText();
    let ready = false;
    void c.waitFor(GUEST_READY_MARKER).then(() => (ready = true));
    const parts = pieces(boot, 4096);
    for (const p of parts.slice(0, -1)) c.appendBytes(p);
    await Promise.resolve();
    expect(ready).toBe(boot.subarray(0, boot.length - parts.at(-1)!.length).includes(GUEST_READY_MARKER));
    c.appendBytes(parts.at(-1)!);
    await Promise.resolve();
    expect(ready).toBe(true);
  });
});

describe("FileTail", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("follows a file another writer appends to, byte for byte, and reads to its end on close", async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), "vmrig-tail-"));
    const file = path.join(dir, "console.log");
    writeFileSync(file, "");
    const got: Buffer[] = [];
    const tail = new FileTail(file, (b) => got.push(b));
    const bytes = fixture("x86-7.3-sysrq-panic.log");
    const parts = pieces(bytes, 1500);
    for (const [i, p] of parts.entries()) {
      appendFileSync(file, p);
      if (i % 3 === 0) await tail.read();
    }
    await tail.close();
    expect(Buffer.concat(got).equals(bytes)).toBe(true);
    // Closed: later writes are not followed, and closing again is harmless.
    appendFileSync(file, "more\n");
    await tail.close();
    expect(Buffer.concat(got).length).toBe(bytes.length);
  });
});
