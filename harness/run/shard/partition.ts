// `vmrig run --shard K/N`: which shard runs each (scenario, kernel row) guest. Pure: rows and
// their expected costs in, a shard per row out. Nothing of the runner it lands on goes in (no
// hostname, clock or randomness), so every runner of a CI matrix computes the same partition.
//
//   pins    `--shard-by LABEL=GLOB,...`: rows whose "scenario/kernel" matches GLOB go to the
//           shard of LABEL; labels take the last shards in the order given (N-m+1 .. N), the
//           other rows share the first N-m shards.
//   balance longest processing time first: rows by cost (desc), then by key, each to the
//           least-loaded shard (the lowest-numbered on a tie).
import { VmrigError } from "../../util/errors.ts";

export interface ShardSpec {
  /** 1-based. */
  index: number;
  count: number;
}

export interface ShardPin {
  label: string;
  glob: string;
}

export interface CostedRow {
  /** "scenario/kernel": the row's name in pins, manifests and messages. */
  key: string;
  /** Expected seconds of guest time. */
  cost: number;
}

export interface PlacedRow extends CostedRow {
  shard: number;
  /** The pin's label that sent it there, if any. */
  pin?: string;
}

/** "2/4" -> { index: 2, count: 4 }; anything else is a usage error naming the option. */
export function parseShard(text: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count)
    throw new VmrigError(`--shard takes K/N with 1 <= K <= N (e.g. 2/4), got "${text}"`);
  return { index, count };
}

/** "kvm=*\/*-kvm,arm64=arm64-*\/*" -> pins, in the order given (which fixes each label's shard). */
export function parsePins(text: string | undefined): ShardPin[] {
  if (!text) return [];
  const pins = text.split(",").map((part) => {
    const m = /^([A-Za-z0-9_.-]+)=(\S+)$/.exec(part.trim());
    if (!m) throw new VmrigError(`--shard-by takes LABEL=GLOB[,LABEL=GLOB...], got "${part}"`);
    return { label: m[1]!, glob: m[2]! };
  });
  return pins;
}

/** `*` any run of characters, `?` one: enough for "scenario/kernel" names, which hold no brackets. */
export function globMatches(glob: string, key: string): boolean {
  const re = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`).test(key);
}

/** The shard each pin label owns: the last ones, in the order the labels were first given. */
export function labelShards(pins: ShardPin[], count: number): Map<string, number> {
  const labels = [...new Set(pins.map((p) => p.label))];
  if (labels.length >= count)
    throw new VmrigError(
      `--shard-by names ${labels.length} label(s) (${labels.join(", ")}) but --shard has ${count} shards: ` +
        `each label takes a shard of its own and at least one must be left for the other rows`,
    );
  return new Map(labels.map((l, i) => [l, count - labels.length + 1 + i]));
}

/** Every row's shard, in the order `rows` were given. Throws when a pin matches no row (a typo). */
export function partition(rows: CostedRow[], count: number, pins: ShardPin[] = []): PlacedRow[] {
  const owned = labelShards(pins, count);
  const general = count - owned.size;
  const unmatched = pins.filter((p) => !rows.some((r) => globMatches(p.glob, r.key)));
  if (unmatched.length)
    throw new VmrigError(
      `--shard-by: ${unmatched.map((p) => `${p.label}=${p.glob}`).join(", ")} matches no row; ` +
        `rows are named scenario/kernel: ${rows.map((r) => r.key).join(", ")}`,
    );
  const placed = new Map<string, PlacedRow>();
  const free: CostedRow[] = [];
  for (const r of rows) {
    const pin = pins.find((p) => globMatches(p.glob, r.key));
    if (pin) placed.set(r.key, { ...r, shard: owned.get(pin.label)!, pin: pin.label });
    else free.push(r);
  }
  const load = Array.from({ length: general }, () => 0);
  const byCost = [...free].sort((a, b) => b.cost - a.cost || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const r of byCost) {
    const least = load.indexOf(Math.min(...load));
    load[least]! += r.cost;
    placed.set(r.key, { ...r, shard: least + 1 });
  }
  return rows.map((r) => placed.get(r.key)!);
}

/** Each shard's summed cost, shard 1 first. */
export function shardLoads(placed: PlacedRow[], count: number): number[] {
  const load = Array.from({ length: count }, () => 0);
  for (const r of placed) load[r.shard - 1]! += r.cost;
  return load;
}

/** max/mean of the shards' loads: 1 is perfect balance; what the bench reports. */
export function imbalance(loads: number[]): number {
  const mean = loads.reduce((a, b) => a + b, 0) / loads.length;
  return mean > 0 ? Math.max(...loads) / mean : 1;
}
