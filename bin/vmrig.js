#!/usr/bin/env node
// `npx vmrig` without a build step: tsx compiles the TypeScript source in this same process, so
// SIGINT and SIGTERM reach vmrig itself (a launcher in between would die and orphan the guests).
import { register } from "tsx/esm/api";
register();
await import("../harness/cli.ts");
