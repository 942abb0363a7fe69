#!/usr/bin/env node
// Thin launcher so `npx vmrig` works without a build step: tsx runs the TypeScript source.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const tsx = path.join(root, "node_modules", ".bin", "tsx");
const r = spawnSync(tsx, [path.join(root, "harness", "cli.ts"), ...process.argv.slice(2)], { stdio: "inherit" });
process.exit(r.status ?? 2);
