// `vmrig qmp <socket> <command> [json-arguments]`: one QMP command to a running QEMU (a guest
// kept by `vmrig run --keep-failed`), its reply printed as JSON. No socat needed.
import { QmpClient } from "../qemu/qmp.ts";
import { ExitCode, VmrigError } from "../util/errors.ts";

export const qmpUsage = `  qmp <socket> <command> [json-arguments]     one QMP command to a kept guest's QEMU (cont, stop,
                                                dump-guest-memory '{"paging":false,"protocol":"file:/tmp/g.elf"}')`;

/** Pure: the command's arguments from the command line's JSON object, or a usage error. */
export function qmpArguments(json: string | undefined): Record<string, unknown> | undefined {
  if (json === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (e) {
    throw new VmrigError(`vmrig qmp: the arguments are not JSON: ${(e as Error).message}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
    throw new VmrigError(`vmrig qmp: the arguments must be a JSON object, got ${json}`);
  return parsed as Record<string, unknown>;
}

export async function qmpCommand(args: string[], write: (text: string) => void): Promise<number> {
  const [socket, command, json, ...extra] = args;
  if (!socket || !command || extra.length) throw new VmrigError(`usage: vmrig qmp <socket> <command> [json-arguments]`);
  const qmpArgs = qmpArguments(json);
  const qmp = await QmpClient.connect(socket).catch((e: Error) => {
    throw new VmrigError(`vmrig qmp: cannot connect to ${socket}: ${e.message}`);
  });
  try {
    const reply = await qmp.execute(command, qmpArgs).catch((e: Error) => {
      throw new VmrigError(`vmrig qmp ${command}: ${e.message}`);
    });
    write(JSON.stringify(reply) + "\n");
    return ExitCode.ok;
  } finally {
    qmp.close();
  }
}
