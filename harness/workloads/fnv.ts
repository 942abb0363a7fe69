// FNV-1a 64, the checksum the guest probe reports for what it read or wrote. Computed in two
// 32-bit halves: BigInt per byte would take seconds on a 64 MiB file.
const PRIME_LOW = 0x1b3; // FNV prime 64 = 2^40 + 0x1b3

export class Fnv1a64 {
  private hi = 0xcbf29ce4;
  private lo = 0x84222325;

  update(buf: Uint8Array): this {
    let hi = this.hi;
    let lo = this.lo;
    for (let i = 0; i < buf.length; i++) {
      lo ^= buf[i]!;
      lo >>>= 0;
      const p = lo * PRIME_LOW; // < 2^41: exact in a double
      const carry = Math.floor(p / 4294967296);
      hi = (hi * PRIME_LOW + carry + ((lo << 8) >>> 0)) >>> 0;
      lo = p >>> 0;
    }
    this.hi = hi;
    this.lo = lo;
    return this;
  }

  hex(): string {
    return this.hi.toString(16).padStart(8, "0") + this.lo.toString(16).padStart(8, "0");
  }
}
