// virtme-ng as a second reference for boot to a first command. Debian sid packages it (pure
// Python); the bench unpacks it and its Python dependencies from the archive with vmrig's own
// client, runs it with the host's python3, and gives it vmrig's virtiofsd through a wrapper.
import { execa } from "execa";
import { chmod, cp, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { downloadDeb, loadSuiteIndex, unpackDeb } from "../harness/debian/archive.ts";
import { provisionVirtiofsd } from "../harness/virtiofs/provision.ts";
import type { BootPhase } from "../harness/guest/boot-phases.ts";
import type { KernelArtifact } from "../harness/types.ts";

const PACKAGES = [
  "virtme-ng",
  "python3-argcomplete",
  "python3-requests",
  "python3-urllib3",
  "python3-idna",
  "python3-certifi",
  "python3-chardet",
] as const;

export interface VirtmeNg {
  version: string;
  reason?: string;
  boot?: () => Promise<{ totalMs: number; phases: BootPhase[] }>;
}

const DONE = "vmrig-bench-vng-done";
const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

export async function virtmeNgBoot(kernel: KernelArtifact, work: string): Promise<VirtmeNg> {
  try {
    if (!kernel.release || !kernel.modulesDir) return { version: "", reason: "the kernel has no modules directory" };
    const root = path.join(work, "virtme-ng");
    const index = await loadSuiteIndex("sid", "amd64", { extraPackages: [...PACKAGES] });
    let version = "";
    for (const name of PACKAGES) {
      const pkg = index.packages.find((p) => p.name === name);
      if (!pkg) return { version: "", reason: `Debian sid has no ${name}` };
      if (name === "virtme-ng") version = pkg.version;
      await unpackDeb(await downloadDeb(pkg), root);
    }
    // vng finds a kernel's modules at <root>/lib/modules/<release> beside <root>/boot/.
    const kroot = path.join(work, "virtme-ng-kernel");
    await mkdir(path.join(kroot, "boot"), { recursive: true });
    await symlink(kernel.image, path.join(kroot, "boot", `vmlinuz-${kernel.release}`));
    // A copy: vng runs depmod in it, and the cache stays as vmrig verified it.
    await cp(kernel.modulesDir, path.join(kroot, "lib", "modules", kernel.release), { recursive: true });
    const vfs = await provisionVirtiofsd(new AbortController().signal);
    const bin = path.join(work, "virtme-ng-bin");
    await mkdir(bin, { recursive: true });
    const wrapper = [vfs.argv0, ...vfs.prefixArgs].map(quote).join(" ");
    await writeFile(path.join(bin, "virtiofsd"), `#!/bin/sh\nexec ${wrapper} "$@"\n`);
    await chmod(path.join(bin, "virtiofsd"), 0o755);
    const env = {
      PYTHONPATH: path.join(root, "usr/lib/python3/dist-packages"),
      PATH: `${bin}:${path.join(root, "usr/bin")}:${process.env.PATH}`,
    };
    const kimg = path.join(kroot, "boot", `vmlinuz-${kernel.release}`);
    // prettier-ignore
    const args = [path.join(root, "usr/bin/vng"), "--run", kimg, "--disable-kvm", "--cpus", "2", "--memory", "1G",
      "--user", "root", "--verbose", "--exec", `echo ${DONE}`];
    const out = path.join(work, "virtme-ng.out");
    const boot = async () => {
      const t0 = Date.now();
      // stdout to a file: vng hands the guest its stdio by /proc/self/fd, which a pipe defeats.
      const r = await execa("/usr/bin/python3", args, {
        env,
        reject: false,
        stdin: "ignore",
        stdout: { file: out },
        stderr: { file: out },
        timeout: 300_000,
      });
      const said = await readFile(out, "utf8");
      // vng 1.41 exits 255 here and, unless --verbose, prints nothing of the command: its output
      // on the console vng shows is the proof it ran.
      if (!said.includes(DONE)) throw new Error(`vng exited ${r.exitCode}: ${said.trim().slice(-400)}`);
      return { totalMs: Date.now() - t0, phases: [] };
    };
    await boot(); // warm-up, and proof it works here
    return { version, boot };
  } catch (e) {
    return { version: "", reason: (e as Error).message.split("\n")[0]! };
  }
}
