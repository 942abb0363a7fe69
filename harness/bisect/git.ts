// git for a bisect: the user's repository is only read (rev-parse, log); everything that moves
// runs in a private clone inside vmrig's cache (`git clone --shared`: the user's objects through
// alternates, nothing copied, nothing written to their repository). `git bisect` itself runs in
// that clone, so the log it keeps is one `git bisect replay` accepts anywhere, and its checkouts
// rewrite only the files that differ between commits: make stays incremental.
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import { HostError, VmrigError } from "../util/errors.ts";
import { buildDirAtomic, exists, removeTempSiblings } from "../util/atomic-fs.ts";

const env = { LC_ALL: "C", GIT_TERMINAL_PROMPT: "0", GIT_OPTIONAL_LOCKS: "0" };
/** For `git revert` in the clone: no user identity needed, none of the user's config used for it. */
const identity = ["-c", "user.name=vmrig", "-c", "user.email=vmrig@localhost", "-c", "advice.detachedHead=false"];

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function git(dir: string, args: string[], signal?: AbortSignal): Promise<GitResult> {
  const r = await execa("git", ["-C", dir, ...identity, ...args], {
    reject: false,
    env,
    ...(signal ? { cancelSignal: signal } : {}),
  });
  if ((r as { code?: string }).code === "ENOENT")
    throw new HostError("git is not installed: install the git package to bisect.");
  if (r.isCanceled) throw signal?.reason ?? new Error("aborted");
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function gitOk(dir: string, args: string[], signal?: AbortSignal): Promise<string> {
  const r = await git(dir, args, signal);
  if (r.code !== 0) throw new VmrigError(`git ${args.join(" ")} failed in ${dir}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** The commit `ref` names in `repo` (full hash), or a VmrigError saying which ref is wrong. */
export async function resolveCommit(repo: string, ref: string, what: string): Promise<string> {
  if (ref.startsWith("-")) throw new VmrigError(`${what}: ${JSON.stringify(ref)} is not a ref`);
  const r = await git(repo, ["rev-parse", "--verify", "--quiet", "--end-of-options", `${ref}^{commit}`]);
  const sha = r.stdout.trim();
  if (r.code !== 0 || !/^[0-9a-f]{40,64}$/.test(sha))
    throw new VmrigError(`${what}: ${JSON.stringify(ref)} is not a commit in ${repo}`);
  return sha;
}

export async function commitSubject(repo: string, sha: string): Promise<string> {
  return (await gitOk(repo, ["log", "-1", "--format=%s", sha])).trim();
}

export async function isAncestor(repo: string, older: string, newer: string): Promise<boolean> {
  return (await git(repo, ["merge-base", "--is-ancestor", older, newer])).code === 0;
}

/** Number of commits in good..bad. */
export async function countBetween(repo: string, good: string, bad: string): Promise<number> {
  return Number((await gitOk(repo, ["rev-list", "--count", `${good}..${bad}`])).trim());
}

export async function isWorkTree(repo: string): Promise<boolean> {
  return (await git(repo, ["rev-parse", "--git-dir"]).catch(() => ({ code: 1 }))).code === 0;
}

/** The git directory holding `repo`'s objects (for alternates): `git rev-parse --git-common-dir`, absolute. */
async function commonDir(repo: string): Promise<string> {
  const d = (await gitOk(repo, ["rev-parse", "--git-common-dir"])).trim();
  return path.resolve(repo, d);
}

/**
 * Makes `src` a clone of `repo` sharing its objects. An existing clone is kept (its checkout is
 * what makes the next build incremental) after checking it still borrows from `repo`.
 */
export async function ensureClone(
  repo: string,
  src: string,
  signal: AbortSignal,
  log: (l: string) => void,
): Promise<void> {
  const objects = path.join(await commonDir(repo), "objects");
  const alternates = path.join(src, ".git", "objects", "info", "alternates");
  if (await exists(alternates)) {
    const text = await fs.readFile(alternates, "utf8");
    if (text.split("\n").some((l) => path.resolve(path.join(src, ".git", "objects"), l.trim()) === objects)) return;
    log(`the bisect clone ${src} borrows from another repository: recreating it`);
  }
  await fs.rm(src, { recursive: true, force: true });
  // The slot is locked: a temporary clone beside src was left by an interrupted run.
  await removeTempSiblings(src);
  log(`cloning ${repo} (shared objects, no copy)`);
  const clone = async (tmp: string) => {
    const args = ["clone", "--quiet", "--shared", "--no-checkout", "--no-tags", repo, tmp];
    const r = await execa("git", args, { reject: false, env, cancelSignal: signal });
    if (r.isCanceled) throw signal.reason ?? new Error("aborted");
    if (r.exitCode !== 0) throw new VmrigError(`git clone --shared ${repo} failed: ${String(r.stderr).trim()}`);
  };
  await buildDirAtomic(src, clone, { createTemp: false });
}

/**
 * The clone is private and its slot is locked while a bisect uses it, so an index.lock found
 * here was left by a git that an interrupt (Ctrl-C, a timeout) killed mid-write: without
 * removing it, resuming the bisect would fail on "Another git process seems to be running".
 */
async function dropStaleIndexLock(src: string): Promise<void> {
  await fs.rm(path.join(src, ".git", "index.lock"), { force: true });
}

/** Throws away anything a build or a revert left in the clone's tree (tracked changes, untracked files). */
export async function cleanTree(src: string, signal?: AbortSignal): Promise<void> {
  await dropStaleIndexLock(src);
  // A fresh `clone --no-checkout` has no index: nothing to reset (a reset would write every file).
  if (await exists(path.join(src, ".git", "index"))) await gitOk(src, ["reset", "--quiet", "--hard"], signal);
  await gitOk(src, ["clean", "-fdq"], signal);
}

/** Checks out `sha` (detached); only files that differ are rewritten. */
export async function checkoutCommit(src: string, sha: string, signal?: AbortSignal): Promise<void> {
  const fresh = !(await exists(path.join(src, ".git", "index")));
  await cleanTree(src, signal);
  const head = (await git(src, ["rev-parse", "--verify", "--quiet", "HEAD"], signal)).stdout.trim();
  if (head === sha && !fresh) return;
  await gitOk(src, ["checkout", "--quiet", "--force", "--detach", sha], signal);
}

export async function headCommit(src: string): Promise<string> {
  return (await gitOk(src, ["rev-parse", "HEAD"])).trim();
}

/** Applies the reverse of `culprit` to the tree (on top of the checked-out commit) without committing. */
export async function revertInTree(
  src: string,
  culprit: string,
  signal?: AbortSignal,
): Promise<{ ok: true } | { ok: false; why: string }> {
  const parents =
    (await gitOk(src, ["rev-list", "--parents", "-n", "1", culprit], signal)).trim().split(/\s+/).length - 1;
  const r = await git(
    src,
    ["revert", "--no-commit", "--no-edit", ...(parents > 1 ? ["-m", "1"] : []), culprit],
    signal,
  );
  if (r.code === 0) return { ok: true };
  const why = `${r.stdout}\n${r.stderr}`
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !/^hint:/.test(l))
    .slice(0, 8)
    .join("; ");
  await git(src, ["revert", "--abort"], signal);
  await cleanTree(src, signal);
  return { ok: false, why };
}

// ---- git bisect in the clone ----------------------------------------------------------------

export type BisectState =
  | { kind: "next"; commit: string; /** "roughly 2 steps" as git says it. */ left?: string }
  | { kind: "found"; culprit: string }
  /** Skips left several commits, any of which may be the first bad one. */
  | { kind: "ambiguous"; candidates: string[] };

/** Pure: what `git bisect start|good|bad|skip|replay` printed says (HEAD is asked separately). */
export function parseBisectOutput(out: string): { found?: string; candidates?: string[]; left?: string } {
  const found = /^([0-9a-f]{40,64}) is the first bad commit$/m.exec(out);
  if (found) return { found: found[1]! };
  if (/There are only 'skip'ped commits left to test/.test(out)) {
    const after = out.split(/The first bad commit could be any of:\n/)[1] ?? "";
    const candidates = after
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^[0-9a-f]{40,64}$/.test(l));
    return { candidates };
  }
  const left = /\(roughly (\d+ steps?)\)/.exec(out);
  return left ? { left: left[1]! } : {};
}

async function bisectState(src: string, r: GitResult, what: string): Promise<BisectState> {
  const out = `${r.stdout}\n${r.stderr}`;
  const p = parseBisectOutput(out);
  if (p.found) return { kind: "found", culprit: p.found };
  if (p.candidates) return { kind: "ambiguous", candidates: p.candidates };
  if (r.code !== 0) throw new VmrigError(`git bisect ${what} failed: ${out.trim()}`);
  return { kind: "next", commit: await headCommit(src), ...(p.left ? { left: p.left } : {}) };
}

/** Ends any bisect in the clone, staying on the current commit (no checkout). */
export async function bisectReset(src: string): Promise<void> {
  await dropStaleIndexLock(src);
  if (await exists(path.join(src, ".git", "BISECT_START"))) {
    const head = await git(src, ["rev-parse", "--verify", "--quiet", "HEAD"]);
    await git(src, ["bisect", "reset", ...(head.code === 0 ? [head.stdout.trim()] : [])]);
  }
}

export async function bisectStart(src: string, bad: string, good: string, signal?: AbortSignal): Promise<BisectState> {
  await bisectReset(src);
  await cleanTree(src, signal);
  return bisectState(src, await git(src, ["bisect", "start", bad, good], signal), "start");
}

export async function bisectMark(
  src: string,
  verdict: "good" | "bad" | "skip",
  commit: string,
  signal?: AbortSignal,
): Promise<BisectState> {
  await cleanTree(src, signal);
  return bisectState(src, await git(src, ["bisect", verdict, commit], signal), verdict);
}

export async function bisectReplay(src: string, logFile: string, signal?: AbortSignal): Promise<BisectState> {
  await bisectReset(src);
  await cleanTree(src, signal);
  return bisectState(src, await git(src, ["bisect", "replay", logFile], signal), "replay");
}

export async function bisectLog(src: string): Promise<string> {
  return gitOk(src, ["bisect", "log"]);
}

/** Pure: the commits a bisect log marks, in order: [{verdict, commit}]. The start line gives bad and good. */
export function parseBisectLog(text: string): Array<{ verdict: "good" | "bad" | "skip"; commit: string }> {
  const out: Array<{ verdict: "good" | "bad" | "skip"; commit: string }> = [];
  for (const line of text.split("\n")) {
    const m = /^git bisect (good|bad|skip) ([0-9a-f]{40,64})\s*$/.exec(line.trim());
    if (m) out.push({ verdict: m[1] as "good" | "bad" | "skip", commit: m[2]! });
  }
  return out;
}
