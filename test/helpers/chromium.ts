// Debian's chromium, headless, for checking that the HTML reports render and their links resolve.
import { execa } from "execa";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const chromiumBinary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));

const flags = (profile: string) => [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--hide-scrollbars",
  `--user-data-dir=${profile}`,
];

async function withProfile<T>(fn: (profile: string) => Promise<T>): Promise<T> {
  const profile = mkdtempSync(path.join(os.tmpdir(), "vmrig-chromium-"));
  try {
    return await fn(profile);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The DOM chromium built from the page (after parsing, as a browser sees it). */
export async function dumpDom(file: string): Promise<string> {
  if (!chromiumBinary) throw new Error("chromium is not installed (npm run setup installs it)");
  return withProfile(async (profile) => {
    const r = await execa(chromiumBinary, [...flags(profile), "--dump-dom", pathToFileURL(file).href], {
      reject: false,
      timeout: 120_000,
    });
    if (r.exitCode !== 0 || !r.stdout.includes("</html>"))
      throw new Error(`chromium --dump-dom ${file} failed (${r.exitCode}): ${r.stderr.slice(-500)}`);
    return r.stdout;
  });
}

export async function screenshot(file: string, png: string, size = "1300,1000"): Promise<void> {
  if (!chromiumBinary) throw new Error("chromium is not installed (npm run setup installs it)");
  await withProfile(async (profile) => {
    const r = await execa(
      chromiumBinary,
      [...flags(profile), `--window-size=${size}`, `--screenshot=${png}`, pathToFileURL(file).href],
      { reject: false, timeout: 120_000 },
    );
    if (!existsSync(png))
      throw new Error(`chromium --screenshot ${file} failed (${r.exitCode}): ${r.stderr.slice(-500)}`);
  });
}

const decode = (s: string) =>
  s
    .replace(/&amp;/g, "&")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">");

/**
 * Every link of a rendered page that does not resolve: a relative href whose file is missing,
 * or a fragment with no element of that id (in this page or the linked one). External links
 * count as broken: a report must work from an artifact archive, offline.
 */
export function brokenLinks(
  pageFile: string,
  dom: string,
  domOf: (file: string) => string | undefined = () => undefined,
): string[] {
  const ids = new Set([...dom.matchAll(/\sid="([^"]+)"/g)].map((m) => decode(m[1]!)));
  const broken: string[] = [];
  for (const m of dom.matchAll(/\shref="([^"]*)"/g)) {
    const href = decode(m[1]!);
    if (href.startsWith("#")) {
      if (!ids.has(href.slice(1))) broken.push(href);
      continue;
    }
    const url = new URL(href, pathToFileURL(pageFile));
    if (url.protocol !== "file:") {
      broken.push(href);
      continue;
    }
    const target = fileURLToPath(url);
    if (!existsSync(target)) {
      broken.push(href);
      continue;
    }
    if (url.hash) {
      const other = domOf(target);
      if (
        other !== undefined &&
        !new RegExp(`\\sid="${url.hash.slice(1).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`).test(other)
      )
        broken.push(href);
    }
  }
  return broken;
}

/** Every href of a rendered page. */
export const hrefs = (dom: string) => [...dom.matchAll(/\shref="([^"]*)"/g)].map((m) => decode(m[1]!));
