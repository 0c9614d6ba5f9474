import assert from "node:assert/strict";
import { EndpointTable } from "./endpoint_table.ts";

function table() {
  let nowMs = 0;
  const endpoints = new EndpointTable(["r1:1", "m:1", "r2:1"], { clock: () => nowMs, downMs: 1000 });
  endpoints.setRole("m:1", "master");
  endpoints.setRole("r1:1", "replica");
  endpoints.setRole("r2:1", "replica");
  return { endpoints, advance: (ms: number) => nowMs += ms };
}

Deno.test("the master is whoever said so, whatever its place in the list", () => {
  const { endpoints } = table();
  assert.equal(endpoints.master(), "m:1");
  assert.deepEqual(endpoints.readOrder("master"), ["m:1"]);
  endpoints.setRole("m:1", "unknown");
  assert.equal(endpoints.master(), undefined);
  assert.deepEqual(endpoints.readOrder("master"), []);
});

Deno.test("reads from replicas rotate over them, then fall back to the master", () => {
  const { endpoints } = table();
  assert.deepEqual(endpoints.readOrder("replicas"), ["r1:1", "r2:1", "m:1"]);
  assert.deepEqual(endpoints.readOrder("replicas"), ["r2:1", "r1:1", "m:1"]);
  assert.deepEqual(endpoints.readOrder("replicas"), ["r1:1", "r2:1", "m:1"]);
});

Deno.test("an endpoint that failed is tried last until its down time passes", () => {
  const { endpoints, advance } = table();
  endpoints.markDown("r1:1");
  assert.deepEqual(endpoints.readOrder("replicas"), ["r2:1", "m:1", "r1:1"]);
  assert.deepEqual(endpoints.readOrder("any").at(-1), "r1:1");
  advance(1001);
  assert.equal(endpoints.isDown("r1:1"), false);
  endpoints.markDown("m:1");
  endpoints.markUp("m:1");
  assert.equal(endpoints.isDown("m:1"), false);
});

Deno.test("reading from any endpoint spreads over all of them", () => {
  const { endpoints } = table();
  const firsts = new Set([0, 1, 2].map(() => endpoints.readOrder("any")[0]));
  assert.deepEqual([...firsts].sort(), ["m:1", "r1:1", "r2:1"]);
  assert.throws(() => new EndpointTable([], { clock: () => 0, downMs: 1 }), /without endpoints/);
});

Deno.test("a replica that has not synced yet is never read from, even as a last resort", () => {
  const { endpoints } = table();
  endpoints.setRole("r1:1", "syncing");
  assert.deepEqual(endpoints.readOrder("replicas"), ["r2:1", "m:1"]);
  assert.deepEqual(endpoints.readOrder("any").sort(), ["m:1", "r2:1"]);
  endpoints.setRole("r2:1", "syncing");
  assert.deepEqual(endpoints.readOrder("replicas"), ["m:1"]);
});
