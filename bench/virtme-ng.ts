// virtme-ng as a second reference for boot to a first command. Debian sid packages it (pure
// Python); the bench unpacks it and its Python dependencies from the archive with vmrig's own
// client, runs it with the host's python3, and gives it vmrig's virtiofsd through a wrapper.
import { execa } from "execa";
import { chmod, cp, mkdir, symlink, writeFile } from "node:fs/promises";
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
    await cp(kernel.modulesDir, path.join(kroot, "lib", "modules", kernel.release), { recursive: true });
    const vfs = await provisionVirtiofsd(new AbortController().signal);
    const bin = path.join(work, "virtme-ng-bin");
    await mkdir(bin, { recursive: true });
    const wrapper = [vfs.argv0, ...vfs.prefixArgs].map(quote).join(" ");
    await writeFile(path.join(bin, "virtiofsd"), `#!/bin/sh\nexec ${wrapper} "$@"\n`);
    await chmod(path.join(bin, "virtiofsd"), 0o755);
    const env = {
      PYTHONPATH: path.join(root, "usr/lib/python3/dist-packages"),
      PATH: `${bin}:${process.env.PATH}`,
    };
    const kimg = path.join(kroot, "boot", `vmlinuz-${kernel.release}`);
    // prettier-ignore
    const args = [path.join(root, "usr/bin/vng"), "--run", kimg, "--disable-kvm", "--cpus", "2", "--memory", "1G",
      "--user", "root", "--exec", "true"];
    const boot = async () => {
      const t0 = Date.now();
      const r = await execa("/usr/bin/python3", args, { env, reject: false, stdin: "ignore", timeout: 300_000 });
      if (r.exitCode !== 0) throw new Error(`vng exited ${r.exitCode}: ${String(r.stderr).trim().slice(-400)}`);
      return { totalMs: Date.now() - t0, phases: [] };
    };
    await boot(); // warm-up, and proof it works here
    return { version, boot };
  } catch (e) {
    return { version: "", reason: (e as Error).message.split("\n")[0]! };
  }
}
