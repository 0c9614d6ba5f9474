import assert from "node:assert/strict";
import { replicaAddress } from "./master_streams.ts";

Deno.test("a replica's address is shown as it advertises it, with a wildcard host replaced by where it connects from", () => {
  assert.equal(replicaAddress("10.0.0.5:50052", "10.0.0.5:41234"), "10.0.0.5:50052");
  assert.equal(replicaAddress("0.0.0.0:50052", "10.0.0.5:41234"), "10.0.0.5:50052");
  assert.equal(replicaAddress("0.0.0.0:50052", "::ffff:127.0.0.1:41234"), "127.0.0.1:50052");
  assert.equal(replicaAddress("[::]:50052", "::1:41234"), "[::1]:50052");
  assert.equal(
    replicaAddress("", "ipv4:10.0.0.7:5000"),
    "10.0.0.7:5000",
    "a pull client is shown where it connects from",
  );
});
