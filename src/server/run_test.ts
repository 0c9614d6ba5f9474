import assert from "node:assert/strict";
import { startFailure } from "./run.ts";

Deno.test("a start-up failure of the process's own subsystem reads without repeating it", () => {
  assert.deepEqual(startFailure("server: Cannot listen on 127.0.0.1:1: the address is already in use", "server"), {
    component: "server",
    detail: "Cannot listen on 127.0.0.1:1: the address is already in use",
    text: "Cannot listen on 127.0.0.1:1: the address is already in use",
  });
  assert.equal(
    startFailure("router: No cluster to serve: d/kvstore-cluster.json does not exist", "router").text,
    "No cluster to serve: d/kvstore-cluster.json does not exist",
  );
});

Deno.test("a start-up failure of another subsystem keeps its name, which says what failed", () => {
  assert.deepEqual(startFailure("metrics: Cannot listen on 127.0.0.1:9: in use", "router"), {
    component: "metrics",
    detail: "Cannot listen on 127.0.0.1:9: in use",
    text: "metrics: Cannot listen on 127.0.0.1:9: in use",
  });
  assert.equal(
    startFailure('recovery: Cannot load "kvstore.aof"', "server").text,
    'recovery: Cannot load "kvstore.aof"',
  );
  assert.deepEqual(startFailure("Something without a subsystem", "server"), {
    component: "server",
    detail: "Something without a subsystem",
    text: "Something without a subsystem",
  });
});
