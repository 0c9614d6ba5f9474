import assert from "node:assert/strict";
import { CRASH_POINTS, crashHookFromSpec, parseCrashSpec } from "./crashpoints.ts";

Deno.test("a crash spec names a point and optionally which time it fires", () => {
  assert.deepEqual(parseCrashSpec("mid-snapshot-write"), { point: "mid-snapshot-write", hit: 1 });
  assert.deepEqual(parseCrashSpec("after-append-before-ack:25"), { point: "after-append-before-ack", hit: 25 });
  for (const bad of ["", "nowhere", "mid-snapshot-write:0", "mid-snapshot-write:x"]) {
    assert.throws(() => parseCrashSpec(bad), /Invalid KVSTORE_CRASHPOINT/, bad);
  }
  assert.throws(() => parseCrashSpec("nowhere"), new RegExp(CRASH_POINTS.join(", ")));
});

Deno.test("a crash hook fires once, at the N-th time its point is reached", () => {
  const fired: string[] = [];
  const hook = crashHookFromSpec("before-log-cut:2", (point) => fired.push(point));
  hook("mid-snapshot-write");
  hook("before-log-cut");
  assert.deepEqual(fired, []);
  hook("before-log-cut");
  hook("before-log-cut");
  assert.deepEqual(fired, ["before-log-cut"]);
});
