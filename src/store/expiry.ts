/**
 * The active expiry sweep's search: which keys have passed their deadline.
 *
 * Lazy expiry (a key found expired when touched is removed) never reclaims keys nobody
 * touches again, so a timer also samples keys that carry a deadline, as Redis's
 * activeExpireCycle does: sample a few, and sample again while a large share of the
 * sample had expired, up to a bound per tick. With a small share expired the work per
 * tick stays small; after a burst of expiries the sweep keeps going until it is done.
 *
 * @module
 */

import { isExpired, type Store } from "./store.ts";

/** The sweep's bounds; src/config/limits.ts holds the defaults. */
export interface SweepLimits {
  /** Keys sampled per round. */
  readonly sampleKeys: number;
  /** Another round runs while the share of expired keys in a round exceeds this. */
  readonly repeatRatio: number;
  /** Most keys examined in one call. */
  readonly keysMax: number;
}

/**
 * Finds keys whose deadline has passed at `nowMs`, by sampling. Returns each key at most
 * once; removing them is the caller's job (a master stages their deletion).
 */
export function findExpiredKeys(
  store: Store,
  nowMs: number,
  random: () => number,
  limits: SweepLimits,
): string[] {
  const expired = new Set<string>();
  let examined = 0;
  while (examined < limits.keysMax && store.expiringCount > 0) {
    const sampleSize = Math.min(limits.sampleKeys, limits.keysMax - examined);
    const sample = store.sampleExpiring(sampleSize, random);
    examined += sample.length;
    let expiredInRound = 0;
    for (const key of sample) {
      const entry = store.peek(key);
      if (entry !== undefined && isExpired(entry, nowMs) && !expired.has(key)) {
        expired.add(key);
        expiredInRound++;
      }
    }
    // Keys found in earlier rounds are still in the store (the caller removes them), so
    // the ratio counts only new finds; once rounds stop finding new keys, stop.
    if (expiredInRound <= sample.length * limits.repeatRatio) break;
  }
  return [...expired];
}
