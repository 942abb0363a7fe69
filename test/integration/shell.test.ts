// `vmrig shell` on real guests: an interactive session through a real pty (util-linux `script`),
// the `-- CMD` form, and --kernel-path with a Debian vmlinuz. Three boots in all.
import { describe, expect, it } from "vitest";
import { execa, type ResultPromise } from "execa";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadScenario } from "../../harness/scenario/load.ts";
import { resolveKernel } from "../../harness/kernels/provider.ts";
import { shellRow } from "../../harness/commands/shell-args.ts";
import type { KernelArtifact } from "../../harness/types.ts";
import { guestProcessesWithEnv } from "../helpers/processes.ts";
import { descendantsMatching } from "../helpers/descendants.ts";
import { testScratch } from "../helpers/scratch.ts";

const root = path.resolve(import.meta.dirname, "..", "..");
const vmrig = path.join(root, "bin/vmrig.js");
const scenario = path.join(root, "scenarios/default.yaml");
const tmp = testScratch("vmrig-test-shell-");
const results = path.join(tmp, "results");
const env = { VMRIG_RESULTS: results };
const minutes = (n: number) => n * 60_000;

/** The artifact of the default scenario's row, resolved as a run resolves it (cached by setup). */
async function rowKernel(label: string): Promise<KernelArtifact> {
  const s = await loadScenario(scenario);
  return resolveKernel(shellRow(s, label), { arch: "x86_64", signal: AbortSignal.timeout(minutes(5)), log: () => {} });
}

/** The session's output so far, and a wait for a pattern in it. */
function transcript(child: ResultPromise) {
  let text = "";
  child.stdout?.on("data", (d: Buffer) => (text += d.toString("utf8")));
  child.stderr?.on("data", (d: Buffer) => (text += d.toString("utf8")));
  const waitFor = async (re: RegExp, ms: number): Promise<RegExpMatchArray> => {
    const until = Date.now() + ms;
    for (;;) {
      const m = re.exec(text);
      if (m) return m;
      if (Date.now() > until || child.exitCode !== null)
        throw new Error(`no ${re} within ${ms} ms; output:\n${text.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { waitFor, text: () => text };
}

const noGuestLeft = () => expect(guestProcessesWithEnv("VMRIG_RESULTS", results)).toEqual([]);

/** The newest kept session directory of a row. */
function sessionDir(label: string): string {
  const dirs = readdirSync(path.join(results, "shell")).filter((d) => d.endsWith(`-${label}`));
  return path.join(results, "shell", dirs.sort().at(-1)!);
}

describe("vmrig shell", () => {
  it("refuses an unknown kernel label with exit 2 naming the labels, booting nothing", async () => {
    const r = await execa(process.execPath, [vmrig, "shell", scenario, "--kernel", "nope"], { reject: false, env });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /--kernel: unknown kernel label\(s\) nope; the scenario has debian-6\.18\.15, debian-7\.3/,
    );
    expect(existsSync(results)).toBe(false);
  }, 60_000);

  it(
    "interactive through a real pty: uname, window size and resize, Ctrl-C, exit code",
    { timeout: minutes(6) },
    async () => {
      const kernel = await rowKernel("debian-7.3");
      const cmd = `stty cols 100 rows 30 && exec ${process.execPath} ${vmrig} shell ${scenario} --kernel debian-7.3`;
      const child = execa("script", ["-qfec", cmd, "/dev/null"], { reject: false, env, stdin: "pipe" });
      const t = transcript(child);
      const type = (s: string) => child.stdin.write(s);
      try {
        await t.waitFor(/vmrig shell: debian-7\.3 \(Debian 7\.3\.\S+ .*\) up in [\d.]+ s under (TCG|KVM)/, minutes(4));
        // Each answer is computed in the guest, so the echoed command line cannot match it.
        type("echo R-$((6*7))-$(uname -r)\r");
        expect((await t.waitFor(/R-42-(\S+)/, 60_000))[1]).toBe(kernel.release);

        type("echo S-$((1+1)) $(stty size)\r");
        expect((await t.waitFor(/S-2 (\d+ \d+)/, 30_000))[1]).toBe("30 100");
        // A new local size: TIOCSWINSZ on vmrig's terminal sends it SIGWINCH, as a resized window does.
        const [own] = descendantsMatching(/bin\/vmrig\.js shell/, child.pid);
        await execa("stty", ["-F", readlinkSync(`/proc/${own!.pid}/fd/0`), "rows", "40", "cols", "120"]);
        await new Promise((r) => setTimeout(r, 1000));
        type("echo W-$((2+2)) $(stty size)\r");
        expect((await t.waitFor(/W-4 (\d+ \d+)/, 30_000))[1]).toBe("40 120");

        type("sleep 100\r");
        await new Promise((r) => setTimeout(r, 3000));
        const interrupted = Date.now();
        type("\x03");
        type("echo C-$((3+4)) rc=$?\r");
        // 130: sleep died of the guest's SIGINT (128+2), and the shell went on.
        expect((await t.waitFor(/C-7 rc=(\d+)/, 30_000))[1]).toBe("130");
        expect(Date.now() - interrupted).toBeLessThan(30_000);

        type("exit 7\r");
        const r = await child;
        expect(r.exitCode).toBe(7);
        expect(t.text()).toMatch(/vmrig shell: guest stopped; console and logs kept in /);
      } finally {
        child.kill("SIGKILL");
        await child;
      }
      noGuestLeft();
      const console = readFileSync(path.join(sessionDir("debian-7.3"), "console.log"), "utf8");
      expect(console).toMatch(/Linux version 7\.3\./);
    },
  );

  it(
    "-- CMD on the first row: streams stdout and stderr, no pty, exits with the command's code",
    async () => {
      const kernel = await rowKernel("debian-6.18.15");
      const r = await execa(
        process.execPath,
        [vmrig, "shell", scenario, "--", "sh", "-c", "uname -r; [ -t 0 ] || echo no-tty; echo to-stderr >&2; exit 5"],
        { reject: false, env, stdin: "ignore" },
      );
      expect(r.exitCode).toBe(5);
      expect(r.stdout).toBe(`${kernel.release}\nno-tty`);
      expect(r.stderr).toMatch(/^to-stderr$/m);
      noGuestLeft();
      expect(statSync(path.join(sessionDir("debian-6.18.15"), "console.log")).size).toBeGreaterThan(0);
    },
    minutes(5),
  );

  it(
    "--kernel-path: a Debian vmlinuz with its modules and a --share, a shell on pipes, SIGTERM stops it all",
    async () => {
      const kernel = await rowKernel("debian-7.3");
      const shared = path.join(tmp, "shared");
      mkdirSync(shared, { recursive: true });
      writeFileSync(path.join(shared, "hello.txt"), "hello from the host\n");
      // No terminal: the shell reads these lines from the pipe, then stays in the sleep.
      const child = execa(process.execPath, [vmrig, "shell", "--kernel-path", kernel.image, "--share", shared], {
        reject: false,
        env,
        input: "cat /mnt/share/hello.txt; uname -r; [ -t 0 ] || echo no-tty\nsleep 300\n",
      });
      const t = transcript(child);
      try {
        await t.waitFor(/vmrig shell: kernel \(Linux 7\.3\.\S+ from \S+\/vmlinuz\) up in/, minutes(4));
        await t.waitFor(/no-tty/, 60_000);
        child.kill("SIGTERM");
        const r = await child;
        expect(r.exitCode).toBe(130);
        expect(r.stdout).toBe(`hello from the host\n${kernel.release}\nno-tty`);
      } finally {
        child.kill("SIGKILL");
        await child;
      }
      noGuestLeft();
    },
    minutes(5),
  );
});
