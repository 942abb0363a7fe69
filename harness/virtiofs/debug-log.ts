// virtiofsd's side of a cell. With `--log-level debug` virtiofsd 1.13 logs every request and
// every reply (checked on real runs, see test/fixtures/virtiofsd/):
//
//   ... DEBUG virtiofsd::server] Received request: opcode=Readdirplus (44), inode=5701, unique=26, pid=143
//   ... DEBUG virtiofsd::server] Replying ERROR, header: OutHeader { error: -12 (Cannot allocate memory), unique: 26, len: 16 }
//   ... DEBUG virtiofsd::server] Replying OK, header: OutHeader { len: 1048584, error: 0, unique: 10 }
//
// (an ERROR reply lists its fields in another order than an OK one). Requests and replies pair
// by `unique`; the replies with an error, counted per opcode and errno, are what the table puts
// next to the guest's errno: "virtiofsd refused READDIRPLUS (-12) x 2".
import { open, stat } from "node:fs/promises";
import { linuxErrnoNames } from "../util/errno.ts";

export interface FuseRequest {
  unique: number;
  /** virtiofsd's name ("Readdirplus") and number (44). */
  opcode: string;
  opcodeNum: number;
  inode: number;
  pid?: number;
  reply?: { ok: boolean; error: number; len: number };
}

export interface DebugLog {
  requests: FuseRequest[];
  /** Replies whose request is not in the text (it was logged before the slice began). */
  orphanReplies: number;
}

const REQUEST = /Received request: opcode=(\w+) \((\d+)\), inode=(\d+), unique=(\d+)(?:, pid=(\d+))?/;
const REPLY = /Replying (OK|ERROR), header: OutHeader \{([^}]*)\}/;

function headerField(body: string, name: string): number | undefined {
  const m = new RegExp(`\\b${name}: (-?\\d+)`).exec(body);
  return m ? Number(m[1]) : undefined;
}

/** Pure: requests in log order, each with its reply when the text has it. */
export function parseDebugLog(text: string): DebugLog {
  const requests: FuseRequest[] = [];
  const open = new Map<number, FuseRequest>();
  let orphanReplies = 0;
  for (const line of text.split("\n")) {
    const rq = REQUEST.exec(line);
    if (rq) {
      const r: FuseRequest = {
        unique: Number(rq[4]),
        opcode: rq[1]!,
        opcodeNum: Number(rq[2]),
        inode: Number(rq[3]),
        ...(rq[5] ? { pid: Number(rq[5]) } : {}),
      };
      requests.push(r);
      open.set(r.unique, r);
      continue;
    }
    const rp = REPLY.exec(line);
    if (!rp) continue;
    const unique = headerField(rp[2]!, "unique");
    const req = unique === undefined ? undefined : open.get(unique);
    if (!req) {
      orphanReplies++;
      continue;
    }
    open.delete(req.unique);
    req.reply = { ok: rp[1] === "OK", error: headerField(rp[2]!, "error") ?? 0, len: headerField(rp[2]!, "len") ?? 0 };
  }
  return { requests, orphanReplies };
}

export interface Refusal {
  /** FUSE's spelling: "READDIRPLUS". */
  opcode: string;
  opcodeNum: number;
  /** Negative errno as virtiofsd sends it (-12), and its name (ENOMEM). */
  error: number;
  errno: string;
  count: number;
  /** The first (up to 20) requests' unique ids, to find them in the log. */
  uniques: number[];
}

/** "Readdirplus" -> "READDIRPLUS", "BatchForget" -> "BATCH_FORGET", "CopyFileRange" -> "COPY_FILE_RANGE". */
export function fuseOpcodeName(virtiofsdName: string): string {
  return virtiofsdName.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Pure: the replies with an error, grouped by opcode and errno, in order of first appearance. */
export function refusals(log: DebugLog): Refusal[] {
  const out: Refusal[] = [];
  for (const r of log.requests) {
    if (!r.reply || r.reply.error === 0) continue;
    const opcode = fuseOpcodeName(r.opcode);
    let g = out.find((x) => x.opcode === opcode && x.error === r.reply!.error);
    if (!g) {
      g = {
        opcode,
        opcodeNum: r.opcodeNum,
        error: r.reply.error,
        errno: linuxErrnoNames.get(-r.reply.error) ?? `E${-r.reply.error}`,
        count: 0,
        uniques: [],
      };
      out.push(g);
    }
    g.count++;
    if (g.uniques.length < 20) g.uniques.push(r.unique); // the first few are enough to find them in the log
  }
  return out;
}

/**
 * Errors that are answers, not refusals: a LOOKUP of a name that does not exist is ENOENT by
 * design, and so are missing xattrs; ENOSYS is FUSE's "not implemented" (virtiofsd without
 * --xattr answers overlayfs's GETXATTR so, and the kernel stops asking). They stay in the
 * evidence but make no note.
 */
const ROUTINE = new Set([
  "LOOKUP:ENOENT",
  "GETXATTR:ENODATA",
  "LISTXATTR:ENODATA",
  "GETXATTR:EOPNOTSUPP",
  "LISTXATTR:EOPNOTSUPP",
]);

export function isRoutine(r: Pick<Refusal, "opcode" | "errno">): boolean {
  return r.errno === "ENOSYS" || ROUTINE.has(`${r.opcode}:${r.errno}`);
}

/** "virtiofsd refused READDIRPLUS (-12) x 2" per refusal that is not routine. */
export function refusalNotes(list: Refusal[]): string[] {
  return list.filter((r) => !isRoutine(r)).map((r) => `virtiofsd refused ${r.opcode} (${r.error}) x ${r.count}`);
}

/** Pure: in-flight requests at the end of the text (no reply logged yet). */
export function unanswered(log: DebugLog): FuseRequest[] {
  return log.requests.filter((r) => !r.reply);
}

// ---- reading one cell's slice of a growing log ------------------------------------------------

/** Where the log ends now: a cell's slice starts here. */
export async function logMark(file: string): Promise<number> {
  return (await stat(file).catch(() => undefined))?.size ?? 0;
}

async function readFrom(file: string, offset: number): Promise<string> {
  const fh = await open(file, "r").catch(() => undefined);
  if (!fh) return "";
  try {
    const size = (await fh.stat()).size;
    if (size <= offset) return "";
    const buf = Buffer.alloc(size - offset);
    await fh.read(buf, 0, buf.length, offset);
    return buf.toString("utf8");
  } finally {
    await fh.close();
  }
}

export interface CellServerEvidence {
  evidence: Record<string, unknown>;
  notes: string[];
}

/**
 * virtiofsd's requests since `offset`: counts per opcode, the refusals and their notes. The
 * daemon's output reaches the file through a pipe, so a reply logged just as the guest's
 * command returned may lag a moment: read again while requests still look unanswered.
 */
export async function cellServerEvidence(file: string, offset: number, tag: string): Promise<CellServerEvidence> {
  let text = await readFrom(file, offset);
  for (let i = 0; i < 5 && unanswered(parseDebugLog(text)).length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    text = await readFrom(file, offset);
  }
  const log = parseDebugLog(text);
  if (log.requests.length === 0) return { evidence: {}, notes: [] };
  const byOpcode: Record<string, number> = {};
  for (const r of log.requests) byOpcode[fuseOpcodeName(r.opcode)] = (byOpcode[fuseOpcodeName(r.opcode)] ?? 0) + 1;
  const refused = refusals(log);
  const open = unanswered(log).map((r) => ({ unique: r.unique, opcode: fuseOpcodeName(r.opcode) }));
  return {
    evidence: {
      [`virtiofsd-${tag}`]: {
        requests: log.requests.length,
        byOpcode,
        refusals: refused,
        ...(open.length ? { unanswered: open } : {}),
      },
    },
    notes: refusalNotes(refused),
  };
}
