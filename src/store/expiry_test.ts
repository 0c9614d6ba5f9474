import assert from "node:assert/strict";
import { findExpiredKeys } from "./expiry.ts";
import { Store } from "./store.ts";

const LIMITS = { sampleKeys: 20, repeatRatio: 0.25, keysMax: 2000 };

/** A deterministic random source (mulberry32), so failures reproduce. */
function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("the sweep finds nothing when no deadline has passed", () => {
  const store = new Store();
  for (let i = 0; i < 100; i++) store.apply({ kind: "set", key: `k${i}`, value: "v", expiresAtMs: 10_000 });
  assert.deepEqual(findExpiredKeys(store, 5_000, seededRandom(1), LIMITS), []);
});

Deno.test("the sweep keeps sampling while most of a sample has expired, within its bound", () => {
  const store = new Store();
  for (let i = 0; i < 5000; i++) store.apply({ kind: "set", key: `k${i}`, value: "v", expiresAtMs: 100 });
  const found = findExpiredKeys(store, 200, seededRandom(2), LIMITS);
  assert.ok(found.length > 500, `found only ${found.length}`);
  assert.ok(found.length <= LIMITS.keysMax);
  assert.equal(new Set(found).size, found.length, "each key once");
});

Deno.test("repeated sweeps reclaim every expired key and leave live ones", () => {
  const store = new Store();
  for (let i = 0; i < 3000; i++) {
    store.apply({ kind: "set", key: `k${i}`, value: "v", expiresAtMs: i % 3 === 0 ? 100 : 1_000_000 });
  }
  const random = seededRandom(3);
  for (let tick = 0; tick < 5000 && store.size > 2000; tick++) {
    for (const key of findExpiredKeys(store, 200, random, LIMITS)) store.apply({ kind: "delete", key });
  }
  assert.equal(store.size, 2000);
  for (const [key] of store.entries()) assert.notEqual(Number(key.slice(1)) % 3, 0);
});

Deno.test("a sweep stops early when only a few sampled keys have expired", () => {
  const store = new Store();
  for (let i = 0; i < 10_000; i++) {
    store.apply({ kind: "set", key: `k${i}`, value: "v", expiresAtMs: i < 10 ? 100 : 1_000_000 });
  }
  let sampled = 0;
  const random = seededRandom(4);
  findExpiredKeys(store, 200, () => {
    sampled++;
    return random();
  }, LIMITS);
  assert.ok(sampled <= 2 * LIMITS.sampleKeys, `sampled ${sampled}`);
});
