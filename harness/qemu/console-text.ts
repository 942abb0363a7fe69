// vmrig's live view of a guest console, fed chunk by chunk from console.log (which QEMU itself
// writes). Appending is linear in the bytes appended: a waiter's needle is looked for only in
// the new text plus the needle's length of overlap, never in the whole console again, and the
// text is kept as a list of chunks joined only when a caller asks for a range of it.
import { StringDecoder } from "node:string_decoder";

/** How much console text stays in memory; console.log on disk always has all of it. */
export const DEFAULT_KEEP_CHARS = 32 * 1024 * 1024;

interface Waiter {
  needle: string;
  resolve: () => void;
}

export class ConsoleText {
  private readonly decoder = new StringDecoder("utf8");
  private chunks: string[] = [];
  /** Absolute offset (UTF-16 units since the console began) of chunks[0]. */
  private firstOffset = 0;
  private keptChars = 0;
  private total = 0;
  private totalBytes = 0;
  /** The last characters appended, as long as the longest needle anyone waits for, minus one. */
  private overlap = "";
  private waiters: Waiter[] = [];
  private joined: { from: number; text: string } | undefined;

  constructor(private readonly keepChars = DEFAULT_KEEP_CHARS) {}

  /** Bytes as QEMU wrote them; a UTF-8 sequence split across two chunks is decoded whole. */
  appendBytes(bytes: Buffer): void {
    this.totalBytes += bytes.length;
    this.append(this.decoder.write(bytes));
  }

  /** The end of the stream: a dangling partial UTF-8 sequence becomes U+FFFD. */
  end(): void {
    this.append(this.decoder.end());
  }

  private append(s: string): void {
    if (!s) return;
    this.chunks.push(s);
    this.total += s.length;
    this.keptChars += s.length;
    this.joined = undefined;
    while (this.keptChars - this.chunks[0]!.length >= this.keepChars) {
      const dropped = this.chunks.shift()!;
      this.keptChars -= dropped.length;
      this.firstOffset += dropped.length;
    }
    if (this.waiters.length) {
      this.waiters = this.waiters.filter((w) => {
        const window = this.overlap.slice(this.overlap.length - (w.needle.length - 1)) + s;
        if (!window.includes(w.needle)) return true;
        w.resolve();
        return false;
      });
    }
    const keep = Math.max(0, ...this.waiters.map((w) => w.needle.length - 1));
    this.overlap = keep === 0 ? "" : (this.overlap + s).slice(-keep);
  }

  /** Characters (UTF-16 units) received so far: an offset for `since`. */
  get length(): number {
    return this.total;
  }

  /** Bytes received so far (console.log's size as far as read). */
  get bytes(): number {
    return this.totalBytes;
  }

  /** The text from absolute offset `from` on (from the oldest kept text if that was dropped). */
  since(from: number): string {
    if (from >= this.total) return "";
    const start = Math.max(from, this.firstOffset);
    if (this.joined && this.joined.from <= start) return this.joined.text.slice(start - this.joined.from);
    // Join from the chunk holding `start`; later calls for the same or a later offset reuse it.
    let at = this.firstOffset;
    let i = 0;
    while (i < this.chunks.length - 1 && at + this.chunks[i]!.length <= start) at += this.chunks[i++]!.length;
    const text = this.chunks.slice(i).join("");
    this.chunks = [...this.chunks.slice(0, i), text];
    this.joined = { from: at, text };
    return text.slice(start - at);
  }

  /** Everything kept in memory. */
  text(): string {
    return this.since(0);
  }

  /** Resolves once `needle` has appeared anywhere in the console (already, or later). */
  waitFor(needle: string): Promise<void> {
    if (!needle) return Promise.resolve();
    // Only here is the kept text searched in full: once per waiter, not once per chunk.
    if (this.text().includes(needle)) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push({ needle, resolve });
      const tail = this.text().slice(-(needle.length - 1));
      if (tail.length > this.overlap.length) this.overlap = needle.length > 1 ? tail : "";
    });
  }
}
