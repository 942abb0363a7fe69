// The guest's own account of SSH, read from a real reply on the serial console; the other rows
// remove the line that proves one fact, and the summary must say that fact is missing.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseConsoleReply } from "../../harness/guest/console-shell.ts";
import { diagnosisSections, SSH_DIAGNOSIS_COMMAND, summarizeSshDiagnosis } from "../../harness/guest/ssh-diagnosis.ts";
import { attemptsSummary } from "../../harness/guest/ssh.ts";

const captured = readFileSync(new URL("../fixtures/guest/ssh-locked-out-diagnosis.log", import.meta.url), "latin1");
const nonce = /@@(\w+)""-begin/.exec(captured)![1]!;
const reply = parseConsoleReply(captured, nonce)!.stdout;

describe("the guest's account of SSH, asked on its console", () => {
  it("is the command vmrig typed in the capture", () => {
    expect(captured).toContain(SSH_DIAGNOSIS_COMMAND);
    expect([...diagnosisSections(reply).keys()]).toEqual(["uptime", "run", "sshd", "addr", "tcp", "log"]);
  });

  it("summarises a locked-out guest: everything up, dropbear turning the logins away", () => {
    expect(summarizeSshDiagnosis(reply)).toBe(
      "up 33 s, setup done, dropbear running, listening on port 22, eth0 10.0.2.15/24, dropbear's last log line: " +
        "Dec 02 14:41:07 Exit before auth from <10.0.2.2:44582>: (user 'root', 0 fails): Disconnect received",
    );
  });

  const without = (pattern: RegExp) =>
    reply
      .split("\n")
      .filter((l) => !pattern.test(l))
      .join("\n");
  it.each([
    ["the setup flag", /vmrig-setup-done/, "setup NOT done"],
    ["dropbear's process", /\/usr\/sbin\/dropbear/, "dropbear NOT running"],
    ["the listening socket", /:0016 00000000:0000 0A /, "NOT listening on port 22"],
    ["eth0's address", /eth0\s+inet /, "no IPv4 address"],
  ])("says so when %s is missing", (_what, line, says) => {
    expect(summarizeSshDiagnosis(reply)).not.toContain(says);
    expect(summarizeSshDiagnosis(without(line))).toContain(says);
  });
});

describe("attemptsSummary", () => {
  it("counts each kind of failed attempt in the order first seen", () => {
    const seen = new Map([
      ["Timed out while waiting for handshake", 3],
      ["All configured authentication methods failed", 20],
    ]);
    expect(attemptsSummary(seen)).toBe(
      "; 23 attempts: 3x Timed out while waiting for handshake, 20x All configured authentication methods failed",
    );
    expect(attemptsSummary(new Map([["connect ECONNREFUSED 127.0.0.1:4022", 1]]))).toBe(
      "; 1 attempt: connect ECONNREFUSED 127.0.0.1:4022",
    );
    expect(attemptsSummary(new Map())).toBe("");
  });
});
