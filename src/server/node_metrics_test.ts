import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { MetricsRegistry } from "../metrics/registry.ts";
import { grpc } from "../transport/grpc.ts";
import { RpcMetrics } from "./node_metrics.ts";

const DEFINITION = {
  Get: { path: "/kvstore.KeyValueStore/Get", requestStream: false, responseStream: false },
  Watch: { path: "/grpc.health.v1.Health/Watch", requestStream: false, responseStream: true },
} as unknown as grpc.ServiceDefinition;

function setup() {
  const registry = new MetricsRegistry();
  const metrics = new RpcMetrics(registry);
  const answers: unknown[] = [];
  const handlers = metrics.instrument(DEFINITION, {
    Get: ((call: { request: { fail: boolean } }, callback: grpc.sendUnaryData<unknown>) => {
      if (call.request.fail) callback({ code: grpc.status.INVALID_ARGUMENT, details: "bad" });
      else callback(null, { found: true });
    }) as grpc.UntypedHandleCall,
    Watch: ((call: EventEmitter) => {
      answers.push(call);
    }) as grpc.UntypedHandleCall,
  });
  return { registry, metrics, handlers, answers };
}

Deno.test("a unary call is counted by status and timed, and its answer passes through unchanged", () => {
  const { registry, metrics, handlers } = setup();
  const replies: unknown[] = [];
  const get = handlers.Get as (call: unknown, callback: (error: unknown, value?: unknown) => void) => void;
  get({ request: { fail: false } }, (error, value) => replies.push([error, value]));
  get({ request: { fail: true } }, (error) => replies.push([(error as grpc.StatusObject).code]));
  assert.deepEqual(replies, [[null, { found: true }], [grpc.status.INVALID_ARGUMENT]]);
  assert.equal(metrics.requests("kvstore.KeyValueStore", "Get", "OK"), 1);
  assert.equal(metrics.requests("kvstore.KeyValueStore", "Get", "INVALID_ARGUMENT"), 1);
  assert.equal(metrics.total, 2);
  assert.match(registry.render(), /kvstore_rpc_duration_seconds_count\{service="kvstore.KeyValueStore",rpc="Get"\} 2/);
  assert.match(registry.render(), /kvstore_rpc_in_flight 0/);
});

Deno.test("a streaming call is counted once, when it ends, with the status it ended with", () => {
  const { metrics, handlers, answers, registry } = setup();
  const watch = handlers.Watch as (call: EventEmitter) => void;
  const ok = new EventEmitter();
  const failed = new EventEmitter();
  const cancelled = new EventEmitter();
  for (const call of [ok, failed, cancelled]) watch(call);
  assert.equal(answers.length, 3);
  assert.match(registry.render(), /kvstore_rpc_in_flight 3/);
  ok.emit("finish");
  failed.emit("error", { code: grpc.status.UNAVAILABLE });
  failed.emit("finish");
  cancelled.emit("cancelled");
  cancelled.emit("finish");
  assert.equal(metrics.requests("grpc.health.v1.Health", "Watch", "OK"), 1);
  assert.equal(metrics.requests("grpc.health.v1.Health", "Watch", "UNAVAILABLE"), 1);
  assert.equal(metrics.requests("grpc.health.v1.Health", "Watch", "CANCELLED"), 1);
  assert.equal(metrics.total, 3);
  assert.match(registry.render(), /kvstore_rpc_in_flight 0/);
  assert.doesNotMatch(registry.render(), /rpc="Watch"\} /, "streams are not timed");
});
