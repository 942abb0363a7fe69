// The console as a witness for one step: the first fatal kernel finding after an offset.
import { classifyConsole } from "./classify-console.ts";

export interface FatalFinding {
  title: string;
  excerpt: string;
}

export function firstFatalFinding(consoleText: string, since: number): FatalFinding | undefined {
  const f = classifyConsole(consoleText, { since }).find((x) => x.fatal);
  return f ? { title: f.title, excerpt: f.excerpt } : undefined;
}
