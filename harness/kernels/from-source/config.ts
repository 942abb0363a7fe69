// Kernel configuration: a base (tinyconfig/defconfig) plus fragments merged with the tree's own
// scripts/kconfig/merge_config.sh, then olddefconfig; then every option a fragment set is
// checked against the final .config, because Kconfig silently drops what it cannot honour.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { writeFileAtomic } from "../../util/atomic-fs.ts";
import { VmrigError } from "../../util/errors.ts";
import { cleanBuildEnv } from "./make.ts";
import { buildProblem, type BuildNaming, type ConfigBase } from "./spec.ts";

/** "y", "m", "n" (for `# CONFIG_X is not set`), a number or a quoted string, by option name. */
export type ConfigValues = Map<string, string>;

const SET = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const UNSET = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;

/** Parses .config or fragment text. Later lines win, as in merge_config.sh. */
export function parseConfig(text: string): ConfigValues {
  const out: ConfigValues = new Map();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = SET.exec(line))) out.set(m[1]!, m[2]!);
    else if ((m = UNSET.exec(line))) out.set(m[1]!, "n");
  }
  return out;
}

export interface ConfigRequest {
  option: string;
  value: string;
  /** Fragment file and 1-based line that asked for it (the last one, if several did). */
  fragment: string;
  line: number;
}

/** Every option the fragments set, the last fragment's word winning, in fragment then line order. */
export function fragmentRequests(fragments: ReadonlyArray<{ file: string; text: string }>): Map<string, ConfigRequest> {
  const out = new Map<string, ConfigRequest>();
  for (const { file, text } of fragments) {
    text.split("\n").forEach((raw, i) => {
      const line = raw.trim();
      const m = SET.exec(line) ?? UNSET.exec(line);
      if (!m) return;
      // Re-insert, so the map's order is that of the settings that count (fragment, then line).
      out.delete(m[1]!);
      out.set(m[1]!, { option: m[1]!, value: m[2] ?? "n", fragment: file, line: i + 1 });
    });
  }
  return out;
}

export interface UnstuckOption extends ConfigRequest {
  /** What .config has: a value, "n" (explicitly not set) or undefined (not there at all). */
  got: string | undefined;
}

/** Pure: the requests the final .config does not honour. */
export function optionsThatDidNotStick(
  requests: ReadonlyMap<string, ConfigRequest>,
  final: ConfigValues,
): UnstuckOption[] {
  const out: UnstuckOption[] = [];
  for (const req of requests.values()) {
    const got = final.get(req.option);
    const ok = req.value === "n" ? got === undefined || got === "n" : got === req.value;
    if (!ok) out.push({ ...req, got });
  }
  return out;
}

/** Which of `options` some Kconfig file in `tree` defines (`config X` / `menuconfig X`). */
export async function definedSymbols(tree: string, options: readonly string[]): Promise<Set<string>> {
  const names = options.map((o) => o.replace(/^CONFIG_/, ""));
  if (names.length === 0) return new Set();
  const r = await execa(
    "grep",
    ["-rhoE", "--include=Kconfig*", `^[[:space:]]*(menu)?config[[:space:]]+(${names.join("|")})[[:space:]]*$`, tree],
    { reject: false },
  );
  const found = new Set<string>();
  for (const line of String(r.stdout).split("\n")) {
    const m = /config\s+(\w+)\s*$/.exec(line);
    if (m) found.add(`CONFIG_${m[1]}`);
  }
  return found;
}

/** `fragments` are the build's fragment files in order, to point at the entry that asked for the options. */
export function formatUnstuck(
  build: BuildNaming,
  fragments: readonly string[],
  unstuck: readonly UnstuckOption[],
  defined: ReadonlySet<string>,
  configFile: string,
): string {
  const shown = (v: string | undefined) => (v === undefined ? "absent" : v === "n" ? "not set" : `=${v}`);
  const lines = unstuck.map((u) => {
    const why = !defined.has(u.option)
      ? "no Kconfig in this tree defines it (renamed or removed?)"
      : u.value === "n"
        ? "another option selects it, or it cannot be turned off"
        : u.value === "y" || u.value === "m"
          ? "its dependencies are not met (or a choice or another option overrides it)"
          : "its dependencies are not met, or the value is out of its range";
    const wanted = u.value === "n" ? "not set" : `=${u.value}`;
    return `  ${u.option} ${wanted} (${path.basename(u.fragment)}:${u.line}): .config has it ${shown(u.got)}; ${why}`;
  });
  // One fragment asked for them all: its entry; several did: the whole list.
  const askedBy = new Set(unstuck.map((u) => fragments.indexOf(u.fragment)));
  const [only] = askedBy;
  const key = askedBy.size === 1 && only !== undefined && only >= 0 ? `config[${only}]` : "config";
  const what =
    `${unstuck.length} config option${unstuck.length === 1 ? "" : "s"} from the fragments did not stick ` +
    `after olddefconfig (final config: ${configFile}):`;
  return `${buildProblem(build, key, what)}\n${lines.join("\n")}`;
}

export interface ConfigureOptions extends BuildNaming {
  src: string;
  out: string;
  base: ConfigBase;
  fragments: ReadonlyArray<{ file: string; text: string }>;
  makeVars: string[];
  signal: AbortSignal;
  /** Runs make in the build directory with output going to the build log. */
  make: (args: string[], stage: string) => Promise<unknown>;
  /** false: return what olddefconfig made of the fragments, dropped options and all (config bisect). */
  checkStuck?: boolean;
}

/** Writes out/.config from base + fragments and returns its text, or fails listing what did not stick. */
export async function configure(o: ConfigureOptions): Promise<string> {
  await fs.mkdir(o.out, { recursive: true });
  await o.make([o.base], `make ${o.base}`);
  const configFile = path.join(o.out, ".config");
  const r = await execa(
    path.join(o.src, "scripts", "kconfig", "merge_config.sh"),
    ["-m", "-O", o.out, configFile, ...o.fragments.map((f) => f.file)],
    {
      cwd: o.out,
      reject: false,
      all: true,
      cancelSignal: o.signal,
      extendEnv: false,
      env: { ...cleanBuildEnv(process.env), CONFIG_: "CONFIG_", KCONFIG_CONFIG: configFile },
    },
  );
  if (r.isCanceled) throw o.signal.reason ?? new Error("aborted");
  if (r.exitCode !== 0) {
    throw new VmrigError(
      `Kernel "${o.label}": merge_config.sh failed (exit ${r.exitCode}):\n` +
        String(r.all).trim().split("\n").slice(-20).join("\n"),
    );
  }
  await o.make(["olddefconfig"], "make olddefconfig");
  const text = await fs.readFile(configFile, "utf8");
  if (o.checkStuck === false) return text;
  const unstuck = optionsThatDidNotStick(fragmentRequests(o.fragments), parseConfig(text));
  if (unstuck.length) {
    const defined = await definedSymbols(
      o.src,
      unstuck.map((u) => u.option),
    );
    const fragmentFiles = o.fragments.map((f) => f.file);
    throw new VmrigError(formatUnstuck(o, fragmentFiles, unstuck, defined, configFile));
  }
  return text;
}

// ---- reusing a work slot's .config --------------------------------------------------------

/** Files whose change can change what kconfig produces: Kconfig files, kconfig, base configs. */
export function affectsKconfig(file: string): boolean {
  return (
    /(^|\/)Kconfig[^/]*$/.test(file) ||
    file.startsWith("scripts/kconfig/") ||
    /^(kernel|arch\/[^/]+)\/configs\//.test(file)
  );
}

/**
 * What a .config is a function of: base, fragments, compiler, and those patches that touch
 * Kconfig files. Same signature, same .config: kconfig need not run again.
 */
export function kconfigSignature(args: {
  base: ConfigBase;
  fragments: readonly string[];
  compiler: string;
  patches: ReadonlyArray<{ sha256: string; touched: readonly string[] }>;
}): string {
  const relevant = args.patches.filter((p) => p.touched.some(affectsKconfig)).map((p) => p.sha256);
  return createHash("sha256")
    .update(JSON.stringify({ base: args.base, fragments: args.fragments, compiler: args.compiler, relevant }))
    .digest("hex");
}

interface ConfigState {
  signature: string;
  configSha256: string;
}

const configStateFile = (slot: string) => path.join(slot, "config-state.json");

/** The slot's .config text when it was made for `signature` and nobody changed it since. */
export async function reusableConfig(slot: string, out: string, signature: string): Promise<string | undefined> {
  try {
    const state = JSON.parse(await fs.readFile(configStateFile(slot), "utf8")) as ConfigState;
    const text = await fs.readFile(path.join(out, ".config"), "utf8");
    const sha = createHash("sha256").update(text).digest("hex");
    return state.signature === signature && state.configSha256 === sha ? text : undefined;
  } catch {
    return undefined;
  }
}

export async function forgetConfig(slot: string): Promise<void> {
  await fs.rm(configStateFile(slot), { force: true });
}

export async function recordConfig(slot: string, signature: string, config: string): Promise<void> {
  const state: ConfigState = { signature, configSha256: createHash("sha256").update(config).digest("hex") };
  await writeFileAtomic(configStateFile(slot), JSON.stringify(state));
}
