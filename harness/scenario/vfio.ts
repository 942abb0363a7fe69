// `memory:` and `vfio:` in a scenario file; the `nestedQemu` workload that uses them
// is workloads/nested-qemu.ts.
//
//   memory:
//     backend: memfd                      # or file:/dev/hugepages/vm (fs-DAX files are refused with VFIO)
//     virtioMem: { size: 1G, blockSize: 2M, requested: 0 }    # or a list of them
//   vfio:
//     devices:
//       - { host: "0000:01:00.0" }        # the whole IOMMU group is bound to vfio-pci for the run
//       - { mdev: mtty-2, parent: mtty }  # a mediated device vmrig creates for the run
//     dmaEntryLimit: 1000                 # vfio_iommu_type1's limit for the run, restored after
//     nested: { device: virtio-net-pci }  # hardware-free: the VFIO host is a level-1 guest
//
// `vfio: [ ... ]` is short for `vfio: { devices: [ ... ] }`. Field checks are here; the checks
// between fields run on the whole file (checkVfio).
import { statSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import type { GuestMemorySpec, VfioDeviceSpec, VfioSpec } from "../types.ts";
import { DMA_ENTRY_LIMIT_MAX } from "../workloads/nested-qemu.ts";
import { parseSize, formatSize } from "../util/size.ts";
import { show } from "./messages.ts";
import { isMapping } from "./references.ts";

type Ctx = z.core.$RefinementCtx<unknown>;
const field = (v: unknown, key: string): unknown => (isMapping(v) ? v[key] : undefined);

/** Where vmrig puts the emulated device in a nested level-1 guest (q35 slot 6, free of vmrig's own). */
export const NESTED_DEVICE_BDF = "0000:00:06.0";
/** Emulated PCI devices a level-1 guest can pass on: each has a driver or none in Debian's cloud kernels. */
export const NESTED_DEVICES = ["virtio-net-pci", "e1000e", "e1000"] as const;
/** VIRTIO_MEM_MIN_BLOCK_SIZE in QEMU. */
export const VIRTIO_MEM_MIN_BLOCK = 1024 ** 2;

function strict<Shape extends z.ZodRawShape>(shape: Shape) {
  const known = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) => (issue.code === "unrecognized_keys" ? `unknown key (known: ${known})` : undefined),
  });
}

function size(what = "a size") {
  const expected = (input: unknown) => `expected ${what} like 1G, got ${show(input)}`;
  return z
    .union([z.string(), z.number().int().nonnegative()], { error: (issue) => expected(issue.input) })
    .transform((written, ctx) => {
      const bytes = parseSize(written);
      if (bytes === undefined || !Number.isSafeInteger(bytes)) {
        ctx.issues.push({ code: "custom", input: written, message: expected(written) });
        return z.NEVER;
      }
      return bytes;
    })
    .meta({ description: 'Bytes: a number, or "512", "64K", "2M", "1G" (binary units).' });
}

/** "0000:01:00.0", or "01:00.0" for domain 0; hex digits in either case. Yields the full, lower-case form. */
export function normaliseBdf(input: string): string | undefined {
  const m = /^(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([01][0-9a-f])\.([0-7])$/i.exec(input.trim());
  if (!m) return undefined;
  return `${(m[1] ?? "0000").toLowerCase()}:${m[2]!.toLowerCase()}:${m[3]!.toLowerCase()}.${m[4]}`;
}

const bdf = z
  .string()
  .transform((written, ctx) => {
    const full = normaliseBdf(written);
    if (!full) {
      ctx.issues.push({
        code: "custom",
        input: written,
        message: `expected a PCI address like "0000:01:00.0" (domain:bus:device.function), got ${show(written)}`,
      });
      return z.NEVER;
    }
    return full;
  })
  .meta({
    description: 'PCI address of the device on the VFIO host: "0000:01:00.0" (quote it: YAML reads 01:00 as a number).',
  });

const DEVICE_FORMS = `{ host: "0000:01:00.0" } or { mdev: <type>, parent: <device> }`;
const deviceSchema = strict({
  host: bdf.optional(),
  force: z.boolean().optional().meta({
    description:
      "Bind it even though it carries this host's default route or root filesystem (vmrig refuses otherwise).",
  }),
  mdev: z
    .string()
    .regex(/^[\w.-]+$/, { error: (i) => `expected an mdev type name like mtty-2, got ${show(i.input)}` })
    .optional()
    .meta({ description: "The type, as listed in /sys/class/mdev_bus/<parent>/mdev_supported_types." }),
  parent: z
    .string()
    .regex(/^[\w.:-]+$/, {
      error: (i) => `expected a parent device name like mtty or 0000:01:00.0, got ${show(i.input)}`,
    })
    .optional()
    .meta({ description: "The parent device, as named in /sys/class/mdev_bus." }),
})
  .superRefine((d, ctx) => {
    const forms = [d.host !== undefined, d.mdev !== undefined || d.parent !== undefined].filter(Boolean).length;
    if (forms !== 1) ctx.addIssue({ code: "custom", input: d, message: `expected ${DEVICE_FORMS}` });
    else if (d.host === undefined && (d.mdev === undefined || d.parent === undefined)) {
      ctx.addIssue({
        code: "custom",
        input: d,
        message: `an mdev needs both mdev (its type) and parent, as in ${DEVICE_FORMS}`,
      });
    }
  })
  .meta({ description: `A device to pass through: ${DEVICE_FORMS}.` });

const nestedSchema = strict({
  device: z
    .enum(NESTED_DEVICES)
    .default("virtio-net-pci")
    .meta({ description: `The emulated device the level-1 guest gets at ${NESTED_DEVICE_BDF} and passes to level 2.` }),
  memory: size().prefault("128M").meta({ description: "Level-2 guest RAM (virtio-mem comes on top)." }),
}).meta({
  description:
    "Hardware-free VFIO: a level-1 guest with an emulated intel-iommu (none when only mdevs pass) is the VFIO host; " +
    "nestedQemu workloads start level 2.",
});

const vfioObject = strict({
  devices: z.array(deviceSchema).default([]),
  dmaEntryLimit: z.number().int().min(1).max(DMA_ENTRY_LIMIT_MAX).optional().meta({
    description: "vfio_iommu_type1's dma_entry_limit for the run (restored afterwards); QEMU's check uses it.",
  }),
  nested: nestedSchema.optional(),
});

export const vfioSchema = z
  .preprocess((v) => (Array.isArray(v) ? { devices: v } : v), vfioObject)
  .meta({ description: "VFIO devices for the guest: a list, or { devices, dmaEntryLimit, nested }." });

const virtioMemSchema = strict({
  size: size().meta({
    description: "The device's whole size: QEMU's DMA check counts all of it, not the requested size.",
  }),
  blockSize: size()
    .prefault("2M")
    .meta({ description: "virtio-mem block-size: a power of two, at least 1M; QEMU maps in these granules." }),
  requested: size().prefault(0).meta({ description: "requested-size at start: how much the guest is asked to plug." }),
});

/**
 * Guest RAM is written through to its file: only a regular file, a directory (QEMU makes one there)
 * or a path not yet there, never a device (a disk would take the guest's writes). A comma would
 * smuggle properties into QEMU's -object option.
 */
export function memoryFileProblem(file: string): string | undefined {
  if (file.includes(",")) return `file:${file}: a comma would add QEMU options to the memory backend`;
  // A relative path is the scenario directory's, which the schema does not know: QEMU meets it as written.
  const st = path.isAbsolute(file) ? statSync(file, { throwIfNoEntry: false }) : undefined;
  if (st && !st.isFile() && !st.isDirectory())
    return `file:${file} is not a regular file or a directory: guest RAM never goes to a device, FIFO or socket`;
  return undefined;
}

const backendSchema = z
  .string()
  .transform((written, ctx) => {
    if (written === "memfd") return { kind: "memfd" as const };
    const m = /^file:(.+)$/.exec(written);
    const problem = m ? memoryFileProblem(m[1]!) : undefined;
    if (m && !problem) return { kind: "file" as const, path: m[1]! };
    if (problem) {
      ctx.issues.push({ code: "custom", input: written, message: problem });
      return z.NEVER;
    }
    ctx.issues.push({ code: "custom", input: written, message: `expected memfd or file:<path>, got ${show(written)}` });
    return z.NEVER;
  })
  .meta({ description: "Guest RAM backend: memfd, or file:<path> (a file or directory QEMU maps shared)." });

export const memorySchema = strict({
  backend: backendSchema.optional(),
  virtioMem: z.preprocess((v) => (isMapping(v) ? [v] : v), z.array(virtioMemSchema)).default([]),
}).meta({ description: "How the guest's RAM is backed, and virtio-mem devices on top of it." });

const isPowerOfTwo = (n: number) => n > 0 && 2 ** Math.round(Math.log2(n)) === n;
/** File-level checks see sizes parsed where the field check passed, as written where it did not. */
const shown = (v: unknown) => (typeof v === "number" ? formatSize(v) : show(v));

/** For the whole file (a superRefine): what relates memory and vfio to each other. */
export function checkVfio(file: unknown, ctx: Ctx): void {
  const virtioMem = field(field(file, "memory"), "virtioMem");
  const list = Array.isArray(virtioMem) ? virtioMem : isMapping(virtioMem) ? [virtioMem] : [];
  const at = (i: number, key: string) =>
    Array.isArray(virtioMem) ? ["memory", "virtioMem", i, key] : ["memory", "virtioMem", key];
  list.forEach((d, i) => {
    const sizeB = parseSize(field(d, "size") as string);
    const blockW = field(d, "blockSize") ?? "2M";
    const block = parseSize(blockW as string);
    const requested = parseSize((field(d, "requested") ?? 0) as string);
    if (block !== undefined && (!isPowerOfTwo(block) || block < VIRTIO_MEM_MIN_BLOCK)) {
      ctx.addIssue({
        code: "custom",
        path: at(i, "blockSize"),
        input: blockW,
        message: `must be a power of two of at least 1M (QEMU's virtio-mem block-size), got ${shown(blockW)}`,
      });
      return;
    }
    if (sizeB !== undefined && block !== undefined) {
      if (sizeB === 0 || sizeB % block !== 0) {
        ctx.addIssue({
          code: "custom",
          path: at(i, "size"),
          input: field(d, "size"),
          message: `must be a non-zero multiple of blockSize (${formatSize(block)}), got ${formatSize(sizeB)}`,
        });
      }
      if (requested !== undefined && (requested > sizeB || requested % block !== 0)) {
        ctx.addIssue({
          code: "custom",
          path: at(i, "requested"),
          input: field(d, "requested"),
          message:
            `must be a multiple of blockSize (${formatSize(block)}) no larger than size (${formatSize(sizeB)}), ` +
            `got ${formatSize(requested)}`,
        });
      }
    }
  });

  const vfio = field(file, "vfio");
  const vfioObj = Array.isArray(vfio) ? { devices: vfio } : vfio;
  const nested = field(vfioObj, "nested");
  const devices = field(vfioObj, "devices");
  if (isMapping(nested) && Array.isArray(devices)) {
    devices.forEach((d, i) => {
      const host = field(d, "host");
      if (typeof host === "string" && normaliseBdf(host) !== undefined && normaliseBdf(host) !== NESTED_DEVICE_BDF) {
        ctx.addIssue({
          code: "custom",
          path: ["vfio", "devices", i, "host"],
          input: host,
          message:
            `with vfio.nested the device is the level-1 guest's emulated one at "${NESTED_DEVICE_BDF}", ` +
            `got ${show(host)}`,
        });
      }
    });
  }
}

// ---- spec -> Scenario ----------------------------------------------------------------------

export function toMemorySpec(
  memory: z.output<typeof memorySchema> | undefined,
  dir: string,
): GuestMemorySpec | undefined {
  if (!memory) return undefined;
  const backend =
    memory.backend?.kind === "file"
      ? { kind: "file" as const, path: path.resolve(dir, memory.backend.path) }
      : memory.backend;
  return {
    ...(backend ? { backend } : {}),
    virtioMem: memory.virtioMem.map((d, i) => ({
      id: `vm${i}`,
      sizeBytes: d.size,
      blockBytes: d.blockSize,
      requestedBytes: d.requested,
    })),
  };
}

export function toVfioSpec(vfio: z.output<typeof vfioSchema> | undefined): VfioSpec | undefined {
  if (!vfio) return undefined;
  const devices: VfioDeviceSpec[] = vfio.devices.map((d) =>
    d.host !== undefined
      ? { kind: "pci", host: d.host, ...(d.force ? { force: true } : {}) }
      : { kind: "mdev", type: d.mdev!, parent: d.parent! },
  );
  // A nested scenario passes the level-1 guest's emulated device unless it names it itself.
  if (vfio.nested && devices.length === 0) devices.push({ kind: "pci", host: NESTED_DEVICE_BDF });
  return {
    devices,
    ...(vfio.dmaEntryLimit !== undefined ? { dmaEntryLimit: vfio.dmaEntryLimit } : {}),
    ...(vfio.nested ? { nested: { device: vfio.nested.device, memoryBytes: vfio.nested.memory } } : {}),
  };
}
