// The guest scheduler behind `vmrig run --jobs`: every (scenario, kernel) row is one guest at a
// time (a fresh guest after a crash replaces it, never runs beside it), and rows from every
// scenario of the run share the host through one scheduler.
//
//   --jobs auto  as many guests as the host holds: their vCPUs within the host's cores and
//                their RAM (+ QEMU/virtiofsd overhead) within the memory available at start.
//   --jobs N     at most N guests at once, RAM still bounded; vCPUs may exceed the cores (the
//                user asked for it): the load-scaled timeouts (load.ts) absorb the slowdown.
//
// A guest that alone exceeds a limit still runs, alone, as it would in a serial run. Admission
// is first come, first served, with backfill: a small guest may start while a large one waits
// for room, since every queued guest is eventually admitted when the running ones finish.
import { readFileSync } from "node:fs";
import os from "node:os";
import type { LoadSnapshot } from "./load.ts";

export interface GuestDemand {
  /** "scenario/kernel": for messages, tests, and matching the plan. */
  key: string;
  vcpus: number;
  /** Guest RAM plus what QEMU and the daemons need besides it. */
  memoryBytes: number;
}

export interface SchedulerLimits {
  maxGuests: number;
  maxVcpus: number;
  memoryBytes: number;
  /** Host cores, for the load factor. */
  cores: number;
}

export type Jobs = "auto" | number;

/** QEMU's own RSS (TCG translation cache, device models), virtiofsd and the SSH client, per guest. */
export const GUEST_OVERHEAD_BYTES = 320 * 1024 * 1024;

export function guestDemand(key: string, vcpus: number, guestMemoryBytes: number): GuestDemand {
  return { key, vcpus, memoryBytes: guestMemoryBytes + GUEST_OVERHEAD_BYTES };
}

/** "auto" | "4" -> Jobs; anything else is a usage error (undefined). */
export function parseJobs(text: string | undefined): Jobs | undefined {
  if (text === undefined || text === "auto") return "auto";
  if (!/^\d+$/.test(text) || Number(text) < 1) return undefined;
  return Number(text);
}

/** Pure: the limits for `--jobs` on a host with `cores` cores and `availableBytes` of memory. */
export function limitsFor(jobs: Jobs, host: { cores: number; availableBytes: number }): SchedulerLimits {
  // Leave the host room for itself: page cache, vmrig, the CI runner's agent.
  const reserve = Math.max(512 * 1024 * 1024, host.availableBytes * 0.1);
  const memoryBytes = Math.max(0, host.availableBytes - reserve);
  const cores = Math.max(1, host.cores);
  if (jobs === "auto") return { maxGuests: Infinity, maxVcpus: cores, memoryBytes, cores };
  return { maxGuests: jobs, maxVcpus: Infinity, memoryBytes, cores };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Pure: may `next` start beside `running`? Anything may start on an empty host. */
export function fits(running: GuestDemand[], next: GuestDemand, limits: SchedulerLimits): boolean {
  if (running.length === 0) return true;
  if (running.length + 1 > limits.maxGuests) return false;
  if (sum(running.map((d) => d.vcpus)) + next.vcpus > limits.maxVcpus) return false;
  return sum(running.map((d) => d.memoryBytes)) + next.memoryBytes <= limits.memoryBytes;
}

/** Pure: indices of `queue` to start now, in queue order (first come, first served, with backfill). */
export function admissions(running: GuestDemand[], queue: GuestDemand[], limits: SchedulerLimits): number[] {
  const now = [...running];
  const picked: number[] = [];
  queue.forEach((d, i) => {
    if (fits(now, d, limits)) {
      now.push(d);
      picked.push(i);
    }
  });
  return picked;
}

/**
 * Pure: the most vCPUs that can be running at once from now on, given what runs and what is
 * still to come (queued or planned). It only shrinks as guests finish, so a guest's timeouts
 * computed from it at start hold for the guest's whole life.
 */
export function loadCeiling(running: GuestDemand[], pending: GuestDemand[], limits: SchedulerLimits): number {
  const runningVcpus = sum(running.map((d) => d.vcpus));
  const all = [...running, ...pending].map((d) => d.vcpus).sort((a, b) => b - a);
  const slots = Math.min(all.length, limits.maxGuests);
  const busiest = sum(all.slice(0, slots));
  // Within the vCPU limit, except a lone oversized guest, which runs alone.
  const cap = Math.max(limits.maxVcpus, all[0] ?? 0);
  return Math.max(runningVcpus, Math.min(busiest, cap));
}

export interface Lease {
  readonly demand: GuestDemand;
  /** The load this guest may see over its life (for load-scaled timeouts). */
  load(): LoadSnapshot;
}

export interface SchedulerStats {
  peakGuests: number;
  peakVcpus: number;
  admitted: number;
}

interface Waiter {
  demand: GuestDemand;
  start: () => void;
}

export class GuestScheduler {
  private readonly running: GuestDemand[] = [];
  private readonly queue: Waiter[] = [];
  /** Guests known to come (scenarios loaded, rows not yet submitted), by key. */
  private readonly planned: GuestDemand[] = [];
  readonly stats: SchedulerStats = { peakGuests: 0, peakVcpus: 0, admitted: 0 };

  constructor(readonly limits: SchedulerLimits) {}

  static forHost(jobs: Jobs): GuestScheduler {
    return new GuestScheduler(limitsFor(jobs, { cores: hostCores(), availableBytes: availableMemoryBytes() }));
  }

  /** Announce guests that will be submitted later, so early guests' timeouts count them. */
  plan(demands: GuestDemand[]): void {
    this.planned.push(...demands);
  }

  /** Forget planned guests whose key starts with `prefix` (their scenario ended or failed early). */
  unplan(prefix: string): void {
    for (let i = this.planned.length - 1; i >= 0; i--)
      if (this.planned[i]!.key.startsWith(prefix)) this.planned.splice(i, 1);
  }

  /** Run `fn` as one guest once the host has room for it; the slot is freed when it settles. */
  async run<T>(demand: GuestDemand, fn: (lease: Lease) => Promise<T>): Promise<T> {
    const p = this.planned.findIndex((d) => d.key === demand.key);
    if (p >= 0) this.planned.splice(p, 1);
    await new Promise<void>((start) => {
      this.queue.push({ demand, start });
      this.pump();
    });
    const lease: Lease = {
      demand,
      load: () => ({
        vcpus: loadCeiling(this.running, [...this.queue.map((w) => w.demand), ...this.planned], this.limits),
        cores: this.limits.cores,
      }),
    };
    try {
      return await fn(lease);
    } finally {
      this.running.splice(this.running.indexOf(demand), 1);
      this.pump();
    }
  }

  /** Guests running now. */
  get active(): readonly GuestDemand[] {
    return this.running;
  }

  private pump(): void {
    const picked = new Set(
      admissions(
        this.running,
        this.queue.map((w) => w.demand),
        this.limits,
      ),
    );
    const starting = this.queue.filter((_, i) => picked.has(i));
    this.queue.splice(0, this.queue.length, ...this.queue.filter((_, i) => !picked.has(i)));
    for (const w of starting) {
      this.running.push(w.demand);
      this.stats.admitted++;
      w.start();
    }
    this.stats.peakGuests = Math.max(this.stats.peakGuests, this.running.length);
    this.stats.peakVcpus = Math.max(this.stats.peakVcpus, sum(this.running.map((d) => d.vcpus)));
  }
}

export function hostCores(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

/** MemAvailable from /proc/meminfo (what can be used without swapping), else free memory. */
export function availableMemoryBytes(meminfo?: string): number {
  try {
    const text = meminfo ?? readFileSync("/proc/meminfo", "utf8");
    const kb = /^MemAvailable:\s+(\d+)\s+kB/m.exec(text)?.[1];
    if (kb) return Number(kb) * 1024;
  } catch {
    // not Linux, or /proc is not mounted
  }
  return os.freemem();
}
