/**
 * Write load for rebalancing tests: several clients, each owning a slice of the keys,
 * write, delete, re-expire and read them back through a router, and remember the last
 * acknowledged state of every key. Reads are checked against that as they happen, so a
 * lost write or a resurrected delete shows up even before the final check.
 *
 * @module
 */

import assert from "node:assert/strict";
import { KvClient } from "../../src/client/client.ts";
import type { HashRing } from "../../src/cluster/ring.ts";
import { keysOn } from "./cluster_process.ts";

/** What a key holds after its last acknowledged write: null when deleted. A deadline
 * set by Expire is known only to within a second or so (`approximate`). */
export type KeyState = { value: string; expiresAtMs: number | null; approximate: boolean } | null;

export class WriteLoad {
  readonly model = new Map<string, KeyState>();
  /** Keys whose last write failed: their state is unknown. */
  readonly uncertain = new Set<string>();
  readonly mismatches: string[] = [];
  ops = 0;
  errors: string[] = [];
  #address: string;
  #writers: number;
  #running = false;
  #done: Promise<void>[] = [];

  constructor(address: string, initial: Map<string, KeyState>, writers: number) {
    this.#address = address;
    this.#writers = writers;
    for (const [key, state] of initial) this.model.set(key, state);
  }

  start(): void {
    this.#running = true;
    const keys = [...this.model.keys()];
    for (let w = 0; w < this.#writers; w++) {
      const own = keys.filter((_, i) => i % this.#writers === w);
      for (let j = 0; j < 50; j++) own.push(`new:${w}:${j}`);
      this.#done.push(this.#run(own, w));
    }
  }

  /** Stops the writers and waits for their last calls. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#done);
  }

  async #run(own: string[], writer: number): Promise<void> {
    using client = new KvClient(this.#address, { deadlineMs: 20_000 });
    let n = 0;
    while (this.#running) {
      const key = own[Math.floor(Math.random() * own.length)];
      const choice = Math.random();
      n++;
      try {
        if (choice < 0.4) {
          const value = `w${writer}-${n}`;
          await client.set(key, value);
          this.#ack(key, { value, expiresAtMs: null, approximate: false });
        } else if (choice < 0.5) {
          await client.delete(key);
          this.#ack(key, null);
        } else if (choice < 0.6) {
          const expiresAtMs = Date.now() + 600_000 + n;
          const value = `m${writer}-${n}`;
          await client.mset([{ key, value, expiresAtMs }]);
          this.#ack(key, { value, expiresAtMs, approximate: false });
        } else if (choice < 0.7) {
          const before = this.model.get(key);
          const existed = await client.expire(key, 900);
          if (!this.uncertain.has(key) && existed !== (before !== null && before !== undefined)) {
            this.mismatches.push(`expire ${key}: existed=${existed}, expected ${JSON.stringify(before)}`);
          }
          if (existed && before) {
            this.#ack(key, { value: before.value, expiresAtMs: Date.now() + 900_000, approximate: true });
          }
        } else {
          const value = await client.get(key);
          const expected = this.model.get(key);
          if (!this.uncertain.has(key) && value !== (expected?.value ?? undefined)) {
            this.mismatches.push(`read ${key}: got ${JSON.stringify(value)}, expected ${JSON.stringify(expected)}`);
          }
        }
        this.ops++;
      } catch (error) {
        this.uncertain.add(key);
        this.errors.push(`${key}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }

  #ack(key: string, state: KeyState): void {
    this.model.set(key, state);
    this.uncertain.delete(key);
  }
}

/**
 * Checks the end state of a cluster against a load's model: every key a shard holds is
 * on the shard `ring` names (so no key is readable from two owners), every acknowledged
 * write is there with its value and deadline, every acknowledged delete stayed deleted,
 * and the router answers the same. Returns how many keys each shard holds.
 */
export async function verifyCluster(
  routerAddress: string,
  shardAddresses: readonly string[],
  ring: HashRing,
  load: WriteLoad,
): Promise<Map<string, number>> {
  const held = new Map(
    await Promise.all(shardAddresses.map(async (address) => [address, await keysOn(address)] as const)),
  );
  for (const [address, keys] of held) {
    for (const key of keys.keys()) {
      assert.equal(ring.owner(key), address, `${key} is on ${address}, but ${ring.owner(key)} owns it`);
    }
  }
  const checked: string[] = [];
  for (const [key, state] of load.model) {
    if (load.uncertain.has(key)) continue;
    const found = held.get(ring.owner(key))?.get(key);
    if (state === null) {
      assert.equal(found, undefined, `${key} was deleted but is on ${ring.owner(key)}`);
      continue;
    }
    assert.ok(found !== undefined, `${key} (acknowledged ${JSON.stringify(state)}) is lost`);
    assert.equal(found.value, state.value, `${key} has its last acknowledged value`);
    if (state.expiresAtMs === null) assert.equal(found.expiresAtMs, null, `${key} has no deadline`);
    else if (state.approximate) assert.ok(Math.abs(found.expiresAtMs! - state.expiresAtMs) < 5000, `${key} deadline`);
    else assert.equal(found.expiresAtMs, state.expiresAtMs, `${key} kept its exact deadline`);
    checked.push(key);
  }
  using client = new KvClient(routerAddress, { deadlineMs: 20_000 });
  for (let start = 0; start < checked.length; start += 5000) {
    const batch = checked.slice(start, start + 5000);
    const values = await client.mget(batch);
    batch.forEach((key, i) => assert.equal(values[i], (load.model.get(key) as { value: string }).value, key));
  }
  return new Map([...held].map(([address, keys]) => [address, keys.size]));
}
