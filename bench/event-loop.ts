// How long vmrig's event loop was kept from running while something ran: everything vmrig
// watches (console, QMP, SSH, daemons) waits that long, and vitest's worker RPC times out.
import { monitorEventLoopDelay } from "node:perf_hooks";

export interface LoopStall {
  /** The longest single stall, ms. */
  maxMs: number;
  p99Ms: number;
}

/** Runs `fn` with Node's event-loop delay histogram (10 ms resolution) on. */
export async function measureLoopStall<T>(fn: () => Promise<T>): Promise<{ result: T; stall: LoopStall }> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  try {
    const result = await fn();
    return { result, stall: { maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6 } };
  } finally {
    h.disable();
  }
}

/** Pure: "max 12.3 ms, p99 10.5 ms". */
export const formatStall = (s: LoopStall): string => `max ${s.maxMs.toFixed(1)} ms, p99 ${s.p99Ms.toFixed(1)} ms`;
