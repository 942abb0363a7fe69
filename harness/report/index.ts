// Renderers of a RunResult: terminal table, Markdown, JUnit, and the summary/exit code.
export { cellLabel, cellDetail, errnoLabel } from "../classify/labels.ts";
export { expectationMet, describeExpectation } from "../classify/expect.ts";
export { renderTerminalTable, type TableOptions } from "./table.ts";
export { renderMarkdown } from "./markdown.ts";
export { renderJUnit } from "./junit.ts";
export { summarise, type RunSummary } from "./summary.ts";
