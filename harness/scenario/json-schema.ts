// JSON Schema of the scenario file, for editors (yaml-language-server completes keys and flags
// typos as you type). Generated from the zod schema and committed; a unit test keeps the two in
// step. Regenerate with: npx tsx harness/scenario/json-schema.ts
//
// Cross-field checks (references, uniqueness, exactly one kind) are not expressible here; the
// loader still runs them.

import { writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { z } from "zod";
import { repoRoot } from "../util/paths.ts";
import { scenarioFileSchema } from "./schema.ts";

export const jsonSchemaPath = path.join(repoRoot, "scenarios", "vmrig-scenario.schema.json");

export function emitJsonSchema(): object {
  // The input side: what a user may write (sizes as "1M", defaults optional), not what the loader yields.
  // Draft 7 is the newest draft every yaml-language-server release understands.
  return z.toJSONSchema(scenarioFileSchema(), { io: "input", target: "draft-07" });
}

/** The file's exact committed text. */
export function renderJsonSchema(): string {
  return `${JSON.stringify(emitJsonSchema(), null, 2)}\n`;
}

export async function writeJsonSchema(file: string = jsonSchemaPath): Promise<void> {
  await writeFile(file, renderJsonSchema());
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  await writeJsonSchema();
  console.log(`wrote ${path.relative(process.cwd(), jsonSchemaPath)}`);
}
