// Load-scaled timeouts. A scenario's timeouts are in "KVM seconds"; the accelerator's timeScale
// turns them into wall seconds for one guest on an idle host. Guests that share the host's
// cores each get a fraction of a core, so under TCG (and oversubscribed KVM) every step takes
// proportionally longer: the deadline must grow with the load or parallelism turns "slow" into
// HANG. Pure.

/** How many guest vCPUs may be runnable at once while a guest lives, and the host's cores. */
export interface LoadSnapshot {
  vcpus: number;
  cores: number;
}

/** max(1, vCPUs / cores): 1 on an idle or exactly-booked host, > 1 when oversubscribed. */
export function loadFactor(load: LoadSnapshot | undefined): number {
  if (!load || !(load.cores > 0) || !(load.vcpus > 0)) return 1;
  return Math.max(1, load.vcpus / load.cores);
}

/** The multiplier for every KVM-seconds timeout: the accelerator's timeScale times the load factor. */
export function loadScaledTimeScale(timeScale: number, load: LoadSnapshot | undefined): number {
  return timeScale * loadFactor(load);
}
