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

/** Every finding (fatal or not: WARNING, KASAN, hung task, stalls) for the cell's evidence. */
export function findingsForEvidence(consoleText: string, since: number): Array<{ name: string; title: string; fatal: boolean; signature: string }> {
  return findingsSince(consoleText, since).map((f) => ({ name: f.name, title: f.title, fatal: f.fatal, signature: crashSignature(f) }));
}
