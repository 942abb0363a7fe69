// The dynamic section of a 64-bit little-endian ELF program: which shared libraries it needs
// (DT_NEEDED). Enough to collect a foreign-architecture program's libraries without running
// its loader (`ldd` only works for the host's own architecture).

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

function segments(bytes: Uint8Array): { view: DataView; segments: Segment[] } {
  if (!(bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46))
    throw new Error("not an ELF file");
  if (bytes[4] !== 2 || bytes[5] !== 1) throw new Error("only 64-bit little-endian ELF is supported");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const phoff = Number(view.getBigUint64(0x20, true));
  const phentsize = view.getUint16(0x36, true);
  const phnum = view.getUint16(0x38, true);
  const out: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    out.push({
      type: view.getUint32(at, true),
      offset: Number(view.getBigUint64(at + 0x08, true)),
      vaddr: Number(view.getBigUint64(at + 0x10, true)),
      filesz: Number(view.getBigUint64(at + 0x20, true)),
    });
  }
  return { view, segments: out };
}

/** DT_NEEDED names in order ("libc.so.6", ...); [] for a static program. */
export function elfNeeded(bytes: Uint8Array): string[] {
  const { view, segments: segs } = segments(bytes);
  const dynamic = segs.find((s) => s.type === PT_DYNAMIC);
  if (!dynamic) return [];
  const entries: Array<[bigint, bigint]> = [];
  for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.filesz; at += 16) {
    const tag = view.getBigInt64(at, true);
    if (tag === DT_NULL) break;
    entries.push([tag, view.getBigUint64(at + 8, true)]);
  }
  const strtabAddr = entries.find(([t]) => t === DT_STRTAB)?.[1];
  if (strtabAddr === undefined) throw new Error("ELF dynamic section has no DT_STRTAB");
  // DT_STRTAB is a virtual address: find the loaded segment holding it.
  const addr = Number(strtabAddr);
  const load = segs.find((s) => s.type === PT_LOAD && addr >= s.vaddr && addr < s.vaddr + s.filesz);
  if (!load) throw new Error("ELF DT_STRTAB is outside every loaded segment");
  const strtab = load.offset + (addr - load.vaddr);
  return entries
    .filter(([t]) => t === DT_NEEDED)
    .map(([, v]) => {
      const start = strtab + Number(v);
      let end = start;
      while (end < bytes.length && bytes[end] !== 0) end++;
      return Buffer.from(bytes.subarray(start, end)).toString("latin1");
    });
}

/**
 * busybox's applet names, read from the binary: a sorted run of NUL-terminated names that
 * starts with "[" and "[[" (busybox's applet_names table). Works for any architecture.
 */
export function busyboxAppletNames(bytes: Uint8Array): string[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = buf.indexOf(Buffer.from("\0[\0[[\0", "latin1"));
  if (start < 0) return [];
  const names: string[] = [];
  for (let p = start + 1; p < buf.length;) {
    const end = buf.indexOf(0, p);
    if (end < 0) break;
    const name = buf.toString("latin1", p, end);
    if (!/^[\x21-\x7e]+$/.test(name)) break;
    names.push(name);
    p = end + 1;
  }
  return names;
}
