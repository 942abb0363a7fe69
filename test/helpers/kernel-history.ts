// A kernel git history to bisect: Debian's linux-source tree (the build pipeline's unpacked
// copy) as the base commit, then 8 small commits. One breaks the build and the next fixes it;
// one makes FUSE readdir fail with -EIO for getdents buffers above 256 KiB (a `readdir`
// workload with a 1M buffer sees it). Used by test/integration/bisect.test.ts and the bench.
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";

export interface KernelHistory {
  repo: string;
  /** Base first, then the 8 commits. */
  shas: string[];
  subjects: string[];
  culprit: string;
  broken: string;
}

export const CULPRIT_SUBJECT = "fuse: readdir: refuse getdents buffers above 256K with -EIO";
export const BROKEN_SUBJECT = "fuse: readdir: factor out the bad-inode check (breaks the build)";

interface Edit {
  file: string;
  /** Returns the new text (throws when its anchor is missing: the tree changed). */
  change: (text: string) => string;
}

const append = (line: string) => (text: string) => `${text}${text.endsWith("\n") ? "" : "\n"}${line}\n`;
function replaceOnce(anchor: string, by: string) {
  return (text: string) => {
    if (!text.includes(anchor))
      throw new Error(`kernel history: anchor not found: ${JSON.stringify(anchor.slice(0, 60))}`);
    return text.replace(anchor, by);
  };
}

const BAD_INODE = "\tif (fuse_is_bad(inode))\n\t\treturn -EIO;\n\n\terr = UNCACHED;";

function commits(salt: string): Array<{ subject: string; edits: Edit[] }> {
  const tag = salt ? ` (${salt})` : "";
  return [
    {
      subject: `Documentation: fuse: mention readdir buffer sizes${tag}`,
      edits: [
        {
          file: "Documentation/filesystems/fuse/fuse.rst",
          change: append(`\n.. readdir buffers are clamped to max_pages${tag}`),
        },
      ],
    },
    {
      subject: `fuse: dir: comment on attribute versions${tag}`,
      edits: [{ file: "fs/fuse/dir.c", change: append(`/* attribute versions only grow${tag} */`) }],
    },
    {
      subject: `fuse: file: comment on writeback${tag}`,
      edits: [{ file: "fs/fuse/file.c", change: append(`/* writeback pages are accounted per connection${tag} */`) }],
    },
    {
      subject: BROKEN_SUBJECT,
      edits: [
        {
          file: "fs/fuse/readdir.c",
          change: replaceOnce(BAD_INODE, "\tif (fuse_readdir_bad_inode(inode))\n\t\treturn -EIO;\n\n\terr = UNCACHED;"),
        },
      ],
    },
    {
      subject: "fuse: readdir: fix the build",
      edits: [
        {
          file: "fs/fuse/readdir.c",
          change: replaceOnce("\tif (fuse_readdir_bad_inode(inode))\n", "\tif (fuse_is_bad(inode))\n"),
        },
      ],
    },
    {
      subject: CULPRIT_SUBJECT,
      edits: [
        {
          file: "fs/fuse/readdir.c",
          change: replaceOnce(
            BAD_INODE,
            "\tif (fuse_is_bad(inode))\n\t\treturn -EIO;\n\n" +
              "\t/* Buffers this large only waste memory: refuse them. */\n" +
              "\tif (ctx->count > (256 << 10) && ctx->count < INT_MAX)\n\t\treturn -EIO;\n\n\terr = UNCACHED;",
          ),
        },
      ],
    },
    {
      subject: `fuse: inode: comment on eviction${tag}`,
      edits: [{ file: "fs/fuse/inode.c", change: append(`/* evicted inodes keep their nodeid until forget${tag} */`) }],
    },
    {
      subject: `Documentation: fuse: readdir notes${tag}`,
      edits: [
        { file: "Documentation/filesystems/fuse/fuse.rst", change: append(`.. readdirplus fills attributes${tag}`) },
      ],
    },
  ];
}

/**
 * Makes `dir` a git repository holding `pristine` (hard-linked, never written through: changed
 * files are replaced, not edited) with the history above. `salt` changes every commit's text
 * and date, so the hashes (and the kernels) are new; without it the same tree gives the same
 * hashes every time, and a rerun finds its kernels in the build cache.
 */
export async function makeKernelHistory(
  pristine: string,
  dir: string,
  opts: { salt?: string; log?: (l: string) => void } = {},
): Promise<KernelHistory> {
  const log = opts.log ?? (() => undefined);
  const salt = opts.salt ?? "";
  const date = salt ? new Date().toISOString() : "2026-01-01T00:00:00Z";
  const env = {
    GIT_AUTHOR_NAME: "vmrig test",
    GIT_AUTHOR_EMAIL: "test@vmrig",
    GIT_COMMITTER_NAME: "vmrig test",
    GIT_COMMITTER_EMAIL: "test@vmrig",
    GIT_AUTHOR_DATE: date,
    GIT_COMMITTER_DATE: date,
    LC_ALL: "C",
  };
  const git = async (...args: string[]) => String((await execa("git", ["-C", dir, ...args], { env })).stdout).trim();
  const started = Date.now();
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const linked = await execa("cp", ["-al", pristine, dir], { reject: false });
  if (linked.exitCode !== 0) {
    await fs.rm(dir, { recursive: true, force: true });
    await execa("cp", ["-a", "--reflink=auto", pristine, dir]);
  }
  // Symlinks get inodes of their own: `git status` misreads a symlink whose (shared) inode other
  // processes are linking and unlinking meanwhile (cp -al of the same pristine tree) as modified.
  const links = String((await execa("find", [dir, "-type", "l", "-print0"])).stdout)
    .split("\0")
    .filter(Boolean);
  for (const l of links) {
    const target = await fs.readlink(l);
    await fs.rm(l);
    await fs.symlink(target, l);
  }
  await git("init", "-q", "-b", "main");
  // ~96k loose objects would start a background `git gc --auto` (minutes of CPU) after a commit.
  await git("config", "gc.auto", "0");
  await git("config", "maintenance.auto", "false");
  // Debian's tree ignores everything at its top level (/* in .gitignore): add by force.
  await git("-c", "core.looseCompression=0", "add", "-A", "-f");
  await git("commit", "-q", "-m", `base: ${path.basename(path.dirname(pristine))}`);
  log(`kernel history: base commit of ${pristine} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  const shas = [await git("rev-parse", "HEAD")];
  const subjects = [await git("log", "-1", "--format=%s")];
  for (const c of commits(salt)) {
    for (const e of c.edits) {
      const file = path.join(dir, e.file);
      const text = e.change(await fs.readFile(file, "utf8"));
      await fs.rm(file); // break the hard link before writing
      await fs.writeFile(file, text);
    }
    await git("commit", "-q", "-a", "-m", c.subject);
    shas.push(await git("rev-parse", "HEAD"));
    subjects.push(c.subject);
  }
  return {
    repo: dir,
    shas,
    subjects,
    culprit: shas[subjects.indexOf(CULPRIT_SUBJECT)]!,
    broken: shas[subjects.indexOf(BROKEN_SUBJECT)]!,
  };
}

/** The one-cell scenario a bisect of `makeKernelHistory`'s tree runs (getdents with 1 MiB: the regression's cell). */
export function bisectScenarioYaml(name: string, repo: string, repoRoot: string): string {
  const fragment = path.join(repoRoot, "kernels", "guest-x86_64.config");
  return `name: ${name}
machine: { arch: x86_64, memory: 1G, cpus: 2 }
kernels:
  stock: { build: { source: { git: ${repo}, ref: main }, arch: x86_64, config: [${fragment}] } }
shares: [{ tag: share }]
workloads:
  - { id: getdents-1M, readdir: { share: share, entries: 300, bufferSize: 1M } }
expect: { default: PASS }
`;
}
