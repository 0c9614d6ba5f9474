import assert from "node:assert/strict";
import { KeyLocks } from "./key_locks.ts";

const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("a second holder of a key waits until the first releases", async () => {
  const locks = new KeyLocks();
  const events: string[] = [];
  const first = await locks.lock(["k"]);
  const second = locks.lock(["k"]).then((release) => {
    events.push("second");
    return release;
  });
  await turn();
  assert.deepEqual(events, []);
  first();
  (await second)();
  assert.deepEqual(events, ["second"]);
  assert.equal(locks.size, 0, "entries go when their last holder releases");
});

Deno.test("holders of disjoint keys do not wait for each other", async () => {
  const locks = new KeyLocks();
  const a = await locks.lock(["a", "b"]);
  const c = await locks.lock(["c"]);
  a();
  c();
});

Deno.test("holders whose key sets overlap in opposite orders never deadlock", async () => {
  const locks = new KeyLocks();
  const order: number[] = [];
  const holders = Array.from({ length: 50 }, async (_, i) => {
    const keys = i % 2 === 0 ? ["x", "y", "z"] : ["z", "y", "x"];
    const release = await locks.lock(keys);
    order.push(i);
    await turn();
    release();
  });
  await Promise.all(holders);
  assert.deepEqual(order, Array.from({ length: 50 }, (_, i) => i), "holders run in the order they asked");
  assert.equal(locks.size, 0);
});

Deno.test("a key listed twice is locked once, and releasing twice is harmless", async () => {
  const locks = new KeyLocks();
  const release = await locks.lock(["k", "k"]);
  release();
  release();
  (await locks.lock(["k"]))();
});
