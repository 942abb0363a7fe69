// Which vhost-user daemon of a share died first: /proc's zombie exit codes and the chain rule.
import { describe, expect, it } from "vitest";
import { chainDeathReason, parseZombieExit } from "../../harness/virtiofs/daemon.ts";

// Captured on the project host (Linux 6.x): /proc/<pid>/stat of an unreaped child that was
// SIGKILLed, of one that called _exit(0), and of a running process.
const killedZombie =
  "1137 (python3) Z 1076 1073 4626 0 -1 4228172 231 0 0 0 0 0 0 0 20 0 1 0 216434 0 0 18446744073709551615 " +
  "0 0 0 0 0 0 0 16781312 2 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 9\n";
const cleanZombie =
  "3517 (python3) Z 3465 3463 4626 0 -1 4227148 228 0 0 0 0 1 0 0 20 0 1 0 224831 0 0 18446744073709551615 " +
  "0 0 0 0 0 0 0 16781312 2 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

describe("parseZombieExit", () => {
  it("reads a zombie's exit code as waitpid would report it", () => {
    expect(parseZombieExit(killedZombie)).toEqual({ code: null, signal: "SIGKILL" });
    expect(parseZombieExit(cleanZombie)).toEqual({ code: 0, signal: null });
    // exit(3): status in the second byte.
    expect(parseZombieExit(cleanZombie.replace(/ 0\n$/, " 768\n"))).toEqual({ code: 3, signal: null });
  });

  it("says nothing of a process that still runs, whatever its name holds", () => {
    expect(parseZombieExit(killedZombie.replace(") Z ", ") S "))).toBeUndefined();
    // A command name with spaces and a ")" does not shift the fields.
    const odd = killedZombie.replace("(python3)", "(a) Z b)");
    expect(parseZombieExit(odd)).toEqual({ code: null, signal: "SIGKILL" });
  });
});

describe("chainDeathReason", () => {
  type Sig = NodeJS.Signals | null;
  const vfs = (code: number | null, signal: Sig = null) => ({ name: "virtiofsd[share]", code, signal });
  const relay = (code: number | null, signal: Sig = null) => ({ name: "relay[share]", code, signal });

  it("blames a killed relay, not the virtiofsd that left cleanly behind it", () => {
    expect(chainDeathReason([vfs(0), relay(null, "SIGKILL")])).toBe(
      "relay[share] exited (signal SIGKILL); virtiofsd[share] exited (status 0) once its peer was gone",
    );
    // Only the relay is dead so far.
    expect(chainDeathReason([undefined, relay(null, "SIGKILL")])).toBe("relay[share] exited (signal SIGKILL)");
  });

  it("blames a killed virtiofsd over the relay that failed for want of it", () => {
    expect(chainDeathReason([vfs(null, "SIGKILL"), relay(1)])).toBe(
      "virtiofsd[share] exited (signal SIGKILL); relay[share] exited (status 1)",
    );
    expect(chainDeathReason([vfs(null, "SIGKILL")])).toBe("virtiofsd[share] exited (signal SIGKILL)");
  });

  it("is undefined while every daemon runs", () => {
    expect(chainDeathReason([undefined, undefined])).toBeUndefined();
    expect(chainDeathReason([])).toBeUndefined();
  });
});
