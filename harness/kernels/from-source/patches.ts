// Patches: which files a unified diff touches (to undo it later) and applying a series with GNU
// patch, reporting exactly which hunk of which patch failed. Parsing is pure.
import path from "node:path";
import { execa } from "execa";
import { HostError, VmrigError } from "../../util/errors.ts";
import { buildProblem, type BuildNaming } from "./spec.ts";

export interface PatchedFile {
  /** Path in the tree after stripping one component (-p1); undefined for /dev/null. */
  oldPath?: string;
  newPath?: string;
  /** The hunk headers in order: "@@ -380,7 +380,14 @@ static int fuse_readdir_uncached(...)". */
  hunks: string[];
  /** 1-based line of the first hunk header (GNU patch's "input line" for this file). */
  firstHunkLine: number;
}

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/;

function stripOne(p: string): string | undefined {
  const name = p
    .split("\t")[0]!
    .trim()
    .replace(/^"(.*)"$/, "$1");
  if (name === "/dev/null") return undefined;
  const i = name.indexOf("/");
  return i < 0 ? name : name.slice(i + 1);
}

/** The files and hunks of a unified diff (git format-patch mail or plain `diff -u`). */
export function parsePatch(text: string): PatchedFile[] {
  const lines = text.split("\n");
  const files: PatchedFile[] = [];
  let current: PatchedFile | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("--- ") && lines[i + 1]?.startsWith("+++ ") && HUNK.test(lines[i + 2] ?? "")) {
      current = {
        oldPath: stripOne(line.slice(4)),
        newPath: stripOne(lines[i + 1]!.slice(4)),
        hunks: [],
        firstHunkLine: i + 3,
      };
      files.push(current);
      i += 1;
      continue;
    }
    const m = HUNK.exec(line);
    if (m && current) {
      current.hunks.push(line);
      // Skip the hunk body by its counts, so a removed line starting "-- " is not a header.
      let oldLeft = m[2] === undefined ? 1 : Number(m[2]);
      let newLeft = m[4] === undefined ? 1 : Number(m[4]);
      while ((oldLeft > 0 || newLeft > 0) && i + 1 < lines.length) {
        const body = lines[++i]!;
        if (body.startsWith("\\")) continue; // "\ No newline at end of file"
        const c = body[0];
        if (c === "-") oldLeft--;
        else if (c === "+") newLeft--;
        else {
          oldLeft--;
          newLeft--;
        }
      }
    }
  }
  return files;
}

/** Every path a patch may create, change or delete (relative to the tree). */
export function touchedFiles(text: string): string[] {
  const out = new Set<string>();
  for (const f of parsePatch(text)) {
    if (f.oldPath) out.add(f.oldPath);
    if (f.newPath) out.add(f.newPath);
  }
  return [...out].sort();
}

export interface HunkProblem {
  file?: string;
  /** 1-based hunk number within the file, when GNU patch named one. */
  hunk?: number;
  /** The hunk's @@ header from the patch. */
  header?: string;
  /** What went wrong, in words. */
  problem: string;
}

/** Pure: GNU patch's output (LC_ALL=C) -> what failed, and where it applied only loosely. */
export function parsePatchOutput(
  output: string,
  files: readonly PatchedFile[],
): { failed: HunkProblem[]; loose: string[] } {
  const failed: HunkProblem[] = [];
  const loose: string[] = [];
  let file: string | undefined;
  const headerOf = (f: string | undefined, n: number) =>
    files.find((x) => (x.newPath ?? x.oldPath) === f)?.hunks[n - 1];
  for (const line of output.split("\n")) {
    let m: RegExpExecArray | null;
    if ((m = /^(?:checking|patching) file (.+)$/.exec(line))) file = m[1]!;
    else if ((m = /^can't find file to patch at input line (\d+)/.exec(line))) {
      const at = Number(m[1]);
      // GNU patch names the line of the file's first hunk: the last file starting at or before it.
      const f = files.filter((x) => x.firstHunkLine <= at).at(-1);
      file = f?.oldPath ?? f?.newPath;
      failed.push({ file, problem: "the file does not exist in the tree" });
    } else if ((m = /^Hunk #(\d+) FAILED at (\d+)(.*)\.$/.exec(line))) {
      const hunk = Number(m[1]);
      failed.push({
        file,
        hunk,
        header: headerOf(file, hunk),
        problem: `does not match the tree (tried at line ${m[2]}${m[3] ?? ""})`,
      });
    } else if ((m = /^Hunk #(\d+) succeeded at (\d+) (with fuzz \d+.*|\(offset.*)\.$/.exec(line))) {
      if (/fuzz/.test(m[3]!)) loose.push(`${file}: hunk #${m[1]} applied at line ${m[2]} ${m[3]}`);
    } else if (/^Reversed \(or previously applied\) patch detected!/.test(line)) {
      failed.push({ file, problem: "is already applied (or the patch is reversed)" });
    } else if ((m = /^The next patch would (create|delete) the file (.+?),/.exec(line))) {
      failed.push({
        file: m[2],
        problem: m[1] === "create" ? "would be created but already exists" : "would be deleted but does not exist",
      });
    } else if ((m = /^patch: \*\*\*\* (.+)$/.exec(line))) {
      failed.push({ file, problem: m[1]! });
    }
  }
  return { failed, loose };
}

/** A patch that does not apply: the message names the patch, its position and every failed hunk. */
export class PatchError extends VmrigError {
  constructor(
    message: string,
    readonly patch: string,
    readonly index: number,
    readonly failed: HunkProblem[],
    readonly output: string,
  ) {
    super(message);
    this.name = "PatchError";
  }
}

export function formatPatchFailure(args: {
  build: BuildNaming;
  patch: string;
  index: number;
  count: number;
  onto: string;
  failed: readonly HunkProblem[];
  output: string;
}): string {
  const { build, patch, index, count, onto, failed, output } = args;
  const after = index > 0 ? ` with patch${index > 1 ? "es" : ""} 1${index > 1 ? `-${index}` : ""} applied` : "";
  const lines = failed.map((f) => {
    const where = f.hunk ? `hunk #${f.hunk}${f.header ? ` (${f.header})` : ""} ` : "";
    return `  ${f.file ?? "?"}: ${where}${f.problem}`;
  });
  if (!lines.length) lines.push("  (GNU patch gave no reason; its output is below)");
  const said = output
    .trim()
    .split("\n")
    .slice(-20)
    .map((l) => `    ${l}`)
    .join("\n");
  const what = `${patch} (patch ${index + 1} of ${count}) does not apply to ${onto}${after}:`;
  return `${buildProblem(build, `patches[${index}]`, what)}\n${lines.join("\n")}\n  patch -p1 --forward said:\n${said}`;
}

export interface ApplyOptions extends BuildNaming {
  /** What the tree is, for messages ("linux-source-7.3 7.3.4-1~bpo13+1 (trixie-backports)"). */
  onto: string;
  signal: AbortSignal;
  log: (line: string) => void;
}

const patchArgs = [
  "-p1",
  "--forward",
  "--batch",
  "--no-backup-if-mismatch",
  "--reject-file=-",
  "--quoting-style=literal",
];

/**
 * Applies `patches` (absolute paths, texts already read) in order to `tree`. Each is first
 * tried with --dry-run, so a patch that fails leaves the tree as the previous patches left it.
 */
export async function applyPatches(
  tree: string,
  patches: ReadonlyArray<{ file: string; text: string }>,
  opts: ApplyOptions,
): Promise<void> {
  for (const [index, { file, text }] of patches.entries()) {
    const files = parsePatch(text);
    const fail = (failed: HunkProblem[], output: string) =>
      new PatchError(
        formatPatchFailure({
          build: opts,
          patch: file,
          index,
          count: patches.length,
          onto: opts.onto,
          failed,
          output,
        }),
        file,
        index,
        failed,
        output,
      );
    if (files.length === 0) throw fail([{ problem: "contains no unified diff (no ---/+++/@@ lines)" }], "");
    for (const dryRun of [true, false]) {
      // The text comes on stdin: exactly what the cache key hashed, even if the file changes.
      const r = await execa("patch", [...patchArgs, ...(dryRun ? ["--dry-run"] : []), "-d", tree], {
        input: text,
        reject: false,
        all: true,
        env: { LC_ALL: "C" },
        cancelSignal: opts.signal,
      });
      if ((r as { code?: string }).code === "ENOENT")
        throw new HostError("patch is not installed: install the patch package.");
      if (r.isCanceled) throw opts.signal.reason ?? new Error("aborted");
      const output = String(r.all ?? "");
      const { failed, loose } = parsePatchOutput(output, files);
      if (r.exitCode !== 0) throw fail(failed, output);
      if (!dryRun) {
        for (const l of loose) opts.log(`warning: ${path.basename(file)}: ${l}`);
      }
    }
  }
}
