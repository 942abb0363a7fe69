// Find kernel crash reports in console text (patterns in console-patterns.ts) and reduce a
// report to a signature that is the same on every run of the same bug.
import {
  CONSOLE_PATTERNS,
  END_MARKER,
  ENTRY_FRAMES,
  REPORT_BODY,
  SKIP_FRAMES,
  withoutCloneSuffix,
  type ConsolePattern,
} from "./console-patterns.ts";

export interface ConsoleFinding {
  /** Name of the pattern that titled the report (console-patterns.ts). */
  name: string;
  /** Normalised first line: no addresses, offsets, PIDs or timestamps. */
  title: string;
  fatal: boolean;
  /** Byte offset (UTF-8) of the report's first line in the console text. */
  offset: number;
  /** The report as printed, from its first line to its end marker or the end of its trace. */
  excerpt: string;
}

const MAX_EXCERPT_LINES = 200;
const MAX_EXCERPT_BYTES = 16 * 1024;
/** Other lines a report may hold (interleaved messages, a refcount message after cut here). */
const STRAY_LINES_ALLOWED = 3;

interface Line {
  raw: string;
  /** Without the printk timestamp / caller prefix. */
  text: string;
  offset: number;
  stamped: boolean;
}

const TIMESTAMP = /\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])? ?/;

/**
 * The kernel's text of a console line. Guest user space writes to the same serial port, so a
 * printk line can start after a partial user line ("Segmentation fault[    3.97] sp : ..."):
 * what precedes the timestamp is not the kernel's.
 */
export function kernelText(raw: string): string {
  const ts = TIMESTAMP.exec(raw);
  return ts ? raw.slice(ts.index + ts[0].length) : raw.replace(/^<\d>/, "");
}

function splitLines(text: string, since: number): Line[] {
  const buf = Buffer.from(text, "utf8");
  const lines: Line[] = [];
  let start = since;
  // A line cut by `since` began in the previous window: it belongs there.
  if (since > 0 && since < buf.length && buf[since - 1] !== 0x0a) {
    const nl = buf.indexOf(0x0a, since);
    start = nl < 0 ? buf.length : nl + 1;
  }
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl < 0 ? buf.length : nl;
    const raw = buf.toString("utf8", start, end).replace(/\r+$/, "");
    lines.push({ raw, text: kernelText(raw), offset: start, stamped: TIMESTAMP.test(raw) });
    start = end + 1;
  }
  return lines;
}

type Match = { pattern: ConsolePattern; match: RegExpMatchArray };

function matchStart(line: Line, stampedConsole: boolean): Match | undefined {
  // On a console with printk timestamps, an unstamped "WARNING: ..." is user space talking.
  if (stampedConsole && !line.stamped) return undefined;
  for (const pattern of CONSOLE_PATTERNS) {
    const match = pattern.start.exec(line.text);
    if (match) return { pattern, match };
  }
  return undefined;
}

const isBody = (text: string) => REPORT_BODY.some((re) => re.test(text));
const isTraceStart = (text: string) => /^Call [Tt]race:/.test(text);

/** Strip what differs between two runs of the same bug: addresses, offsets, modules. */
export function normaliseTitle(title: string): string {
  return (
    title
      // An out-of-tree build (make O=...) names files from the build directory: "../src/fs/x.c".
      .replace(
        /\bat (?:\.\.\/)+(?:[^/\s]+\/)*?((?:arch|block|crypto|drivers|fs|include|init|io_uring|ipc|kernel|lib|mm|net|rust|security|sound|virt)\/)/,
        "at $1",
      )
      .replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+/g, "")
      .replace(/ \[[\w-]+\]/g, "")
      .replace(/,? (?:for )?address: (?:0x)?[0-9a-f]+/g, "") // "..., address: 0000000000000000"
      .replace(/ ?\b0x[0-9a-f]{12,}\b| ?\b[0-9a-f]{16}\b/g, "")
      .replace(/\s+/g, " ")
      .trim()
  );
}

/** Follow a report from its first line: where it ends, which line titles it, whether it is fatal. */
function scanReport(lines: Line[], i: number, first: Match, stamped: boolean) {
  let titled = first.pattern.title ? first : undefined;
  let fatal = first.pattern.fatal;
  let inTrace = false;
  let last = i;
  let stray = 0;
  for (let j = i + 1; j < lines.length && j - i < MAX_EXCERPT_LINES; j++) {
    const t = lines[j]!.text;
    if (END_MARKER.test(t)) {
      last = j;
      break;
    }
    const next = matchStart(lines[j]!, stamped);
    if (next) {
      // Before the trace, another start line is this report's own header (cut here ->
      // WARNING, BUG: NULL pointer -> Oops). After it, a new report begins.
      if (inTrace) break;
      titled ??= next.pattern.title ? next : undefined;
      fatal ||= next.pattern.fatal;
      last = j;
      stray = 0;
    } else if (isBody(t)) {
      inTrace ||= isTraceStart(t);
      last = j;
      stray = 0;
    } else if (++stray > STRAY_LINES_ALLOWED) {
      break;
    }
  }
  return { last, opener: titled ?? first, fatal };
}

export function classifyConsole(text: string, opts: { since?: number } = {}): ConsoleFinding[] {
  const lines = splitLines(text, Math.max(0, opts.since ?? 0));
  const stamped = lines.some((l) => l.stamped);
  const findings: ConsoleFinding[] = [];
  for (let i = 0; i < lines.length; i++) {
    const first = matchStart(lines[i]!, stamped);
    if (!first) continue;
    const { last, opener, fatal } = scanReport(lines, i, first, stamped);
    const title = opener.pattern.title ? opener.pattern.title(opener.match) : "cut here, no report followed";
    findings.push({
      name: opener.pattern.name,
      title: normaliseTitle(title),
      fatal,
      offset: lines[i]!.offset,
      excerpt: capBytes(
        lines
          .slice(i, last + 1)
          .map((l) => l.raw)
          .join("\n"),
      ),
    });
    i = last;
  }
  return findings;
}

function capBytes(s: string): string {
  if (Buffer.byteLength(s) <= MAX_EXCERPT_BYTES) return s;
  return (
    Buffer.from(s)
      .subarray(0, MAX_EXCERPT_BYTES)
      .toString("utf8")
      .replace(/\uFFFD$/, "") + "\n[... excerpt cut ...]"
  );
}

// ---- signature -------------------------------------------------------------------------------

const FRAME = /^\s+(\? )?([\w.$]+)\+0x[0-9a-f]+\/0x[0-9a-f]+/;
/** x86 "RIP: 0010:func+0x5/0x10" (kernel mode: CS 0010), arm64 "pc : func+0x5/0x10". */
const KERNEL_PC = /^(?:RIP: 0010:|pc : )([\w.$]+)\+0x/;

/**
 * The culprit's frames: the kernel-mode PC, then the call trace that follows it (or the first
 * trace when no PC is printed, as for hung tasks). Unreliable `? ` frames, reporting machinery
 * and NMI blocks are skipped; the trace stops at the entry code every bug shares.
 */
export function callTraceFrames(excerpt: string, max = 5): string[] {
  const lines = excerpt.split("\n").map((l) => kernelText(l.replace(/\r$/, "")));
  let from = lines.findIndex((l) => KERNEL_PC.test(l));
  const frames: string[] = [];
  const push = (fn: string) => {
    const name = withoutCloneSuffix(fn);
    if (!SKIP_FRAMES.test(name) && frames.at(-1) !== name) frames.push(name);
  };
  if (from >= 0) push(KERNEL_PC.exec(lines[from]!)![1]!);
  else from = 0;
  const trace = lines.findIndex((l, k) => k >= from && isTraceStart(l));
  if (trace < 0) return frames.slice(0, max);
  let inNmi = false;
  for (const l of lines.slice(trace + 1)) {
    if (/^\s*<NMI>/.test(l)) {
      inNmi = true;
      continue;
    }
    if (/^\s*<\/NMI>/.test(l)) {
      inNmi = false;
      continue;
    }
    if (/^\s*(?:<\/?\w+>)?\s*$/.test(l)) continue; // context markers, blank lines
    const m = FRAME.exec(l);
    if (!m) break; // the trace is over
    if (m[1] || inNmi) continue;
    if (ENTRY_FRAMES.test(withoutCloneSuffix(m[2]!))) break;
    push(m[2]!);
    if (frames.length >= max) break;
  }
  return frames.slice(0, max);
}

/** Title plus top frames: what a bisect compares to know it is still chasing the same crash. */
export function crashSignature(
  finding: Pick<ConsoleFinding, "title" | "excerpt">,
  opts: { frames?: number } = {},
): string {
  const top = callTraceFrames(finding.excerpt, opts.frames ?? 5);
  return top.length ? `${finding.title} | ${top.join(" < ")}` : finding.title;
}
