// Just enough ELF reading for the image builder: a kernel module's .modinfo (its dependencies,
// for kernel packages that ship without modules.dep) and a program's interpreter (to tell a
// static busybox from a dynamic one and to find dropbear's loader). 64-bit little-endian only:
// x86_64 and aarch64 are the architectures vmrig boots.

const PT_INTERP = 3;

interface Elf64 {
  view: DataView;
  bytes: Uint8Array;
}

function openElf64(bytes: Uint8Array): Elf64 {
  const magic = bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
  if (!magic) throw new Error("not an ELF file");
  if (bytes[4] !== 2 || bytes[5] !== 1) throw new Error("only 64-bit little-endian ELF is supported");
  return { view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes };
}

function cString(bytes: Uint8Array, start: number, end = bytes.length): string {
  let stop = start;
  while (stop < end && bytes[stop] !== 0) stop++;
  return Buffer.from(bytes.subarray(start, stop)).toString("latin1");
}

interface Section {
  name: string;
  offset: number;
  size: number;
}

function sections(elf: Elf64): Section[] {
  const v = elf.view;
  const shoff = Number(v.getBigUint64(0x28, true));
  const shentsize = v.getUint16(0x3a, true);
  const shnum = v.getUint16(0x3c, true);
  const shstrndx = v.getUint16(0x3e, true);
  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return {
      nameOffset: v.getUint32(at, true),
      offset: Number(v.getBigUint64(at + 0x18, true)),
      size: Number(v.getBigUint64(at + 0x20, true)),
    };
  });
  const strtab = raw[shstrndx];
  if (!strtab) throw new Error("ELF has no section name table");
  return raw.map((s) => ({ name: cString(elf.bytes, strtab.offset + s.nameOffset), offset: s.offset, size: s.size }));
}

/** The key=value strings of a kernel module's .modinfo section (keys may repeat, e.g. alias). */
export function readModinfo(moduleElf: Uint8Array): Array<[key: string, value: string]> {
  const elf = openElf64(moduleElf);
  const section = sections(elf).find((s) => s.name === ".modinfo");
  if (!section) return [];
  const text = Buffer.from(elf.bytes.subarray(section.offset, section.offset + section.size)).toString("latin1");
  return text
    .split("\0")
    .filter((entry) => entry.includes("="))
    .map((entry) => {
      const eq = entry.indexOf("=");
      return [entry.slice(0, eq), entry.slice(eq + 1)];
    });
}

/** Names of the modules a module depends on directly (its `depends=` modinfo field). */
export function moduleDependsOn(moduleElf: Uint8Array): string[] {
  const depends = readModinfo(moduleElf).find(([key]) => key === "depends")?.[1] ?? "";
  return depends.split(",").filter((name) => name.length > 0);
}

/** The program interpreter (dynamic loader) path, or undefined for a static executable. */
export function elfInterpreter(programElf: Uint8Array): string | undefined {
  const elf = openElf64(programElf);
  const v = elf.view;
  const phoff = Number(v.getBigUint64(0x20, true));
  const phentsize = v.getUint16(0x36, true);
  const phnum = v.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (v.getUint32(at, true) !== PT_INTERP) continue;
    const offset = Number(v.getBigUint64(at + 0x08, true));
    const size = Number(v.getBigUint64(at + 0x20, true));
    return cString(elf.bytes, offset, offset + size);
  }
  return undefined;
}

/** e_machine of the ELF: 62 x86_64, 183 aarch64. */
export function elfMachine(elf: Uint8Array): number {
  return openElf64(elf).view.getUint16(0x12, true);
}
