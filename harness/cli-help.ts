// Pure: each command's own usage, for `vmrig <command> [<subcommand>] --help`. The overview
// (`vmrig --help`) lists them one line each; these say every option and what it does.

const exitCodes = `exit codes: 0 all expectations held, 1 an expectation failed, 2 usage/spec/infrastructure error,
            130 interrupted by SIGINT or SIGTERM (partial results kept, marked incomplete)`;

const results = "  --results DIR        the results root (default $VMRIG_RESULTS, else results/)";

export const commandHelp: Record<string, string> = {
  vfio: `usage: vmrig vfio restore

A run that binds host devices to vfio-pci (or creates mdevs, or raises dma_entry_limit) journals
each change, with its undo, in ~/.cache/vmrig/host-changes/ before making it, and removes the
journal once it has put everything back. A vmrig killed before that (SIGKILL, the OOM killer, a
power cut) leaves its journal: \`vmrig vfio restore\` undoes those changes, newest first, and
removes each journal it fully restored. A journal of a vmrig still running is left to it.

exit codes: 0 restored (or nothing to restore), 2 a change could not be undone (said which)`,
  run: `usage: vmrig run [scenario.yaml ...] [--kernel LABEL]... [--jobs auto|N]
                 [--keep-failed[=DURATION]] [--keep-failed-on=OUTCOMES]

Boots each kernel of each scenario (default: scenarios/default.yaml), runs its workloads and prints
one table; results/<scenario>/<time>/ keeps results.json, results.md, junit.xml, report.html and
every console, dmesg and daemon log.

  --kernel LABEL       only this kernel row (repeatable)
  -j, --jobs auto|N    run the (scenario, kernel) guests in parallel: auto fits them into the
                       host's cores and memory, N runs N at once
  --keep-failed[=DURATION]
                       keep each scenario's first guest whose cell ends HANG or CRASH: paused, with
                       a gdbstub on a UNIX socket; after the reports vmrig prints how to attach gdb,
                       dump its memory and resume it, and waits DURATION (90s, 10m, 1h; default 30m)
                       or until Ctrl-C/SIGTERM, then stops it (docs/keep-failed.md)
  --keep-failed-on=OUTCOMES
                       which cells keep their guest, any of hang,crash,fail,short,errno
                       (default hang,crash)
  --shard K/N          run only shard K of N of the (scenario, kernel) rows, balanced by expected
                       cost; the run directory gets shard.json for \`vmrig merge\` (docs/sharding.md)
  --shard-by LABEL=GLOB,...
                       rows whose scenario/kernel matches GLOB go to LABEL's shard; labels take
                       the last shards in the order given, the other rows share the rest
  --shard-history DIR  balance by what each row took in a run directory or a results root's newest
                       complete run (every shard must be given the same)

${exitCodes}`,
  merge: `usage: vmrig merge DIR... [--results OUT] [--baseline] [--window N]

Merges the run directories of a sharded run (\`vmrig run --shard K/N\`; DIR may be any folder above
them, as CI downloads artifacts) into one run per scenario under OUT: results.json, results.md,
junit.xml, report.html, the rows' files, and the nightly summary, as if one host had run every row.
Each row keeps the host facts of the shard that ran it. Refused (exit 2, nothing written): shards
of different scenario files or vmrig versions, of different partitions, overlapping or missing.

${results.replace("--results DIR", "--results OUT")}
  --baseline           the summary compares with each scenario's pinned baseline
  --window N           runs of history the summary's flakiness looks at (default 7)

${exitCodes}`,
  shell: `usage: vmrig shell SCENARIO [--kernel LABEL] [-- CMD ARGS...]
       vmrig shell --kernel-path IMAGE [--modules DIR] [--arch ARCH] [--share HOSTDIR] [-- CMD ARGS...]

Boots one kernel row's guest exactly as \`vmrig run\` would (kernel, guest image, shares mounted at
/mnt/<tag>, command line, QEMU build, machine, accelerator) and opens an SSH session in it: a
login shell with a pty on a terminal (Ctrl-C goes to the guest's program; exit ends it), plain
pipes otherwise. The guest's console and logs stay in results/shell/<time>-<label>/. vmrig exits
with the session's exit code; every QEMU and daemon is stopped when it ends.

  --kernel LABEL       the scenario's row to boot (default: the first)
  -- CMD ARGS...       run CMD instead of a shell, no pty; one word is a shell command line
  --kernel-path IMAGE  a bzImage or arm64 Image (e.g. from a build tree) in vmrig's guest image
                       and default machine, no scenario
  --modules DIR        its lib/modules/<release> directory (default: the image's own directory
                       when it holds modules.order; else none, the drivers must be built in)
  --arch ARCH          x86_64 or arm64, when the image's header does not say
  --share HOSTDIR      export HOSTDIR to the guest at /mnt/share (virtio-fs)

exit codes: the session's (128+n for a signal, 255 when the guest went away), 2 for usage errors
            or a guest that did not boot, 130 interrupted by SIGINT or SIGTERM`,
  qmp: `usage: vmrig qmp <socket> <command> [json-arguments]

Sends one QMP command to a running QEMU's monitor socket (a guest kept by --keep-failed prints its
socket) and prints the reply as JSON: cont, stop, query-status, or
  dump-guest-memory '{"paging":false,"protocol":"file:/tmp/guest.elf"}'   (an ELF core for crash or drgn)`,
  setup: `usage: vmrig setup [scenario.yaml ...]

Installs every host package vmrig and its tests need (Debian/Ubuntu, as root; QEMU 10 from
bookworm-backports on bookworm), provisions virtiofsd and the vhost-user relay, downloads the
scenarios' kernels and QEMU builds and builds their guest images (default: scenarios/default.yaml),
then prints what this host is ready for. Safe to run again: it installs only what is missing.`,
  doctor: `usage: vmrig doctor

Reports QEMU, virtiofsd, /dev/kvm and the accelerator vmrig would choose (a real probe boot), and
for each of: running x86_64 and arm64 guests, building x86_64 and arm64 kernels and running the
test suite, whether this host is ready or what is missing, with the command that installs it.
Exit 0 when everything is ready, 2 otherwise.`,
  schema: `usage: vmrig schema

Prints the JSON Schema of scenario files (for editors and validators).`,
  kernel: `usage: vmrig kernel build|list|gc ...

  build <scenario.yaml> [LABEL]   build a scenario's \`build\` kernels (cached; incremental)
  list                            the built kernels in the cache, with size and last use
  gc [--max-age-days N] [--work] [--dry-run]
                                  remove interrupted builds and kernels unused for a while

vmrig kernel <subcommand> --help says more.`,
  "kernel build": `usage: vmrig kernel build <scenario.yaml> [LABEL]

Builds the scenario's \`build\` kernels (or only LABEL) without running anything: source, config
fragments and patches as the scenario says, ccache in front of the compiler, served from the cache
when the inputs are unchanged. A host that cannot build is told the exact apt-get command.`,
  "kernel list": `usage: vmrig kernel list

Lists the built kernels in the cache with their size and last use, and the build directories.`,
  "kernel gc": `usage: vmrig kernel gc [--max-age-days N] [--work] [--dry-run]

  --max-age-days N     remove built kernels not used for N days
  --work               also remove the build directories (the next build is a cold one)
  --dry-run            say what would be removed, remove nothing`,
  bisect: `usage: vmrig bisect --tree PATH --good REF --bad REF --scenario FILE --kernel LABEL --workload ID
                   [--repeat N] [--verify] [--restart]
       vmrig bisect --debian-kernel GOOD..BAD | --debian-qemu GOOD..BAD
                   --scenario FILE --kernel LABEL --workload ID [--repeat N] [--restart]
       vmrig bisect --config GOOD BAD --scenario FILE --kernel LABEL --workload ID [--repeat N] [--restart]

Finds the commit of a local kernel git tree that makes one cell fail: builds and boots each step
with the scenario's row LABEL and runs workload ID. Rerun the same command to resume.

  --tree PATH          a kernel git checkout (never modified: vmrig works in a private clone)
  --good REF           a commit where the cell meets its expectation
  --bad REF            a commit where it does not
  --scenario FILE      the scenario that has the row and the workload
  --kernel LABEL       the scenario's \`build\` kernel row to build at each step
  --workload ID        the workload whose cell decides good or bad
  --repeat N           run the cell N times per step (a flaky bug: bad if any run fails)
  --verify             first check that --good is good and --bad is bad
  --restart            forget the saved state and start again

With --debian-kernel or --debian-qemu nothing is built: the versions Debian's archive holds from
GOOD to BAD (every suite, Debian version order) are bisected, each replacing the row's kernel
(same flavour) or its QEMU. GOOD and BAD are versions as rows write them ("6.12" = newest 6.12.x,
"6.18.15", "6.18.15-1~bpo13+1", "11.1", "1:11.1.3+ds-1"). The answer names the last good and
first bad packages, their upstream tags, the Debian changelog entries between them and, for
kernels, the source bisect that continues upstream.

  --debian-kernel GOOD..BAD   Debian kernels of the row's flavour (the row must be \`debian:\`)
  --debian-qemu GOOD..BAD     Debian QEMU builds, run through vmrig's private loader as \`qemu:\` rows

With --config GOOD BAD the tree stays the same and the configuration changes: the row LABEL must be
\`build:\`, whose source, arch, base and patches are used and whose config is replaced. GOOD and BAD
(full .config files or fragments) are each merged over the base and olddefconfig'd; the options
whose values then differ are halved, each step building BAD with GOOD's values for some of them
(olddefconfig again). A step olddefconfig makes into an already tested config reuses its verdict.
The answer is the option with its GOOD and BAD values, and every option olddefconfig changes with it.

  --config GOOD BAD           a config where the cell meets its expectation, one where it does not`,
  compare: `usage: vmrig compare <run-a> <run-b> [--json|--markdown]
       vmrig compare <run> [--baseline] [--window N]

Per cell: regression, fix, flaky, still failing, with what changed (kernel, QEMU, host). A run is a
run directory, its results.json, or a scenario directory (its newest run). Exit 1 when a cell
regressed, 0 otherwise.

  --baseline           compare with the scenario's pinned baseline instead of the run before
  --window N           how many earlier runs tell flaky from regressed (default 7)
  --json, --markdown   output format (default: text)`,
  summary: `usage: vmrig summary [--baseline] [--window N] [--json|--markdown] [--results DIR]

The nightly summary: every scenario's newest run against the one before it (or its baseline);
writes summary.md and summary.json to the results root. Exit 1 when a cell regressed.

${results}`,
  gc: `usage: vmrig gc [--keep N] [--compress-after N] [--max-runs N] [--dry-run] [--results DIR]

Retention for results, per scenario, newest first: the newest --compress-after runs stay as they
are, the rest of the newest --keep runs get their logs gzipped, older runs are pruned to their
reports (results.json/.md, junit.xml, report.html), runs beyond --max-runs are deleted. A pinned
baseline is never pruned or deleted.

  --keep N             runs that keep their logs (default 14)
  --compress-after N   runs left untouched (default 1)
  --max-runs N         runs kept at all (default: no limit)
  --dry-run            say what would change, change nothing
${results}`,
  export: `usage: vmrig export kcidb RUN... [--origin NAME] [--artifacts-url URL] [-o FILE]

Writes runs (run directories, their results.json, or scenario directories: the newest run of each;
e.g. results/*/) as one KCIDB I/O JSON report, schema v5.3: each kernel a checkout and a build,
each cell a test with its status, environment (QEMU, accelerator, architecture, page size),
console log and output files.
Submit it with kcidb's own tool: kcidb-submit -p PROJECT -t TOPIC < FILE.

  --origin NAME        your CI system's KCIDB origin, the prefix of every id (default vmrig;
                       [a-z0-9_]+, agreed with the KCIDB maintainers)
  --artifacts-url URL  where the results root is served (CI artifacts, Pages): a run's files are
                       at URL/<scenario>/<stamp>/... (default: file:// URLs on this host)
  -o, --output FILE    write to FILE (whole or not at all; default: standard output)

exit codes: 0 written, 2 usage error or not a run`,
  baseline: `usage: vmrig baseline <run> | --list | --clear SCENARIO [--results DIR]

Pins a run as its scenario's baseline (compare --baseline uses it; gc never deletes it).

  --list               the pinned baselines
  --clear SCENARIO     unpin the scenario's baseline
${results}`,
};

const subcommands: Record<string, string[]> = { kernel: ["build", "list", "gc"] };

/** The usage to print when `argv` (after `vmrig`) asks for help on a command, else undefined. */
export function helpRequested(argv: string[]): string | undefined {
  const [command, ...rest] = argv;
  if (command === undefined || !(command in commandHelp)) return undefined;
  const end = rest.indexOf("--");
  const options = end === -1 ? rest : rest.slice(0, end);
  if (!options.some((a) => a === "--help" || a === "-h")) return undefined;
  const sub = rest[0];
  if (sub && subcommands[command]?.includes(sub)) return commandHelp[`${command} ${sub}`];
  return commandHelp[command];
}
