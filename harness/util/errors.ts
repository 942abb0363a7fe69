// Errors a user can act on carry where the problem is and map to an exit code; anything else
// is a bug and keeps its stack.

export const ExitCode = {
  ok: 0,
  /** The run finished and at least one cell did not meet its expectation. */
  expectationFailed: 1,
  /** Usage, spec or infrastructure error: nothing was compared. */
  usage: 2,
  /** Interrupted by SIGINT/SIGTERM: partial results kept, marked incomplete. */
  interrupted: 130,
} as const;

export interface SourceLocation {
  file: string;
  line?: number;
  column?: number;
  /** Dotted key path, e.g. "workloads[2].blockSize". */
  key?: string;
}

export class VmrigError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.usage) {
    super(message);
    this.name = "VmrigError";
    this.exitCode = exitCode;
  }
}

/** A problem in a scenario file (or another user file): the message names file:line:col key. */
export class SpecError extends VmrigError {
  readonly issues: Array<SourceLocation & { message: string }>;
  constructor(issues: Array<SourceLocation & { message: string }>) {
    super(formatIssues(issues), ExitCode.usage);
    this.name = "SpecError";
    this.issues = issues;
  }
}

/** Problems shown before the rest is only counted: a machine-made file can have 100,000. */
export const SHOWN_ISSUES = 50;

function formatIssues(issues: Array<SourceLocation & { message: string }>): string {
  const shown = issues.slice(0, SHOWN_ISSUES).map(formatIssue);
  const more = issues.length - shown.length;
  return [...shown, ...(more > 0 ? [`... and ${more} more problems (fix the first ones and run again)`] : [])].join(
    "\n",
  );
}

export function formatIssue(i: SourceLocation & { message: string }): string {
  const where = [i.file, i.line, i.column].filter((x) => x !== undefined).join(":");
  return `${where}${i.key ? ` ${i.key}` : ""}: ${i.message}`;
}

/** The host lacks something vmrig needs (QEMU, virtiofsd, a package, a kernel version). */
export class HostError extends VmrigError {
  constructor(message: string) {
    super(message, ExitCode.usage);
    this.name = "HostError";
  }
}
