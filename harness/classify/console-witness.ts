// The console as a witness for one step: kernel findings after an offset into the console text.
import { classifyConsole, crashSignature, type ConsoleFinding } from "./classify-console.ts";

export interface FatalFinding {
  title: string;
  excerpt: string;
  signature: string;
}

/** `since` is a string index into the console text; the classifier counts bytes. */
function findingsSince(consoleText: string, since: number): ConsoleFinding[] {
  return classifyConsole(consoleText, { since: Buffer.byteLength(consoleText.slice(0, since)) });
}

export function firstFatalFinding(consoleText: string, since: number): FatalFinding | undefined {
  const f = findingsSince(consoleText, since).find((x) => x.fatal);
  return f ? { title: f.title, excerpt: f.excerpt, signature: crashSignature(f) } : undefined;
}

/** How an oops report ends on the console: its end-trace line, or the panic that follows it. */
const OOPS_END = /---\[ end trace|Kernel panic - not syncing|---\[ end Kernel panic/;

/**
 * Pure: has the first fatal report after `since` finished printing? A crash is classified as
 * soon as its first line appears; under TCG the call trace can still be on its way, and the
 * signature needs it.
 */
export function fatalReportComplete(consoleText: string, since: number): boolean {
  const text = consoleText.slice(since);
  const f = findingsSince(consoleText, since).find((x) => x.fatal);
  if (!f) return true;
  const at = text.indexOf(f.title.split(" ").slice(0, 3).join(" "));
  return OOPS_END.test(at >= 0 ? text.slice(at) : text);
}

/** Every finding (fatal or not: WARNING, KASAN, hung task, stalls) for the cell's evidence. */
export function findingsForEvidence(
  consoleText: string,
  since: number,
): Array<{ name: string; title: string; fatal: boolean; signature: string }> {
  return findingsSince(consoleText, since).map((f) => ({
    name: f.name,
    title: f.title,
    fatal: f.fatal,
    signature: crashSignature(f),
  }));
}
