import assert from "node:assert/strict";
import { Health, LatestStatusSender, NODE_HEALTH_SERVICES, type ServingStatus } from "./health.ts";

function recorder() {
  const statuses: ServingStatus[] = [];
  let closed = 0;
  return {
    statuses,
    closed: () => closed,
    watcher: { onStatus: (s: ServingStatus) => statuses.push(s), onClose: () => closed++ },
  };
}

Deno.test("a node knows the whole-node name and the data service, and nothing else", () => {
  const health = new Health(NODE_HEALTH_SERVICES, true);
  assert.equal(health.status(""), "SERVING");
  assert.equal(health.status("kvstore.KeyValueStore"), "SERVING");
  assert.equal(health.status("other.Service"), "SERVICE_UNKNOWN");
  assert.throws(() => health.setServing("other.Service", true), /Unknown service/);
});

Deno.test("a replica starts NOT_SERVING and turns SERVING when replication says so", () => {
  const health = new Health(NODE_HEALTH_SERVICES, false);
  const watch = recorder();
  health.watch("", watch.watcher);
  assert.equal(health.serving, false);
  health.setAllServing(true);
  assert.equal(health.serving, true);
  assert.equal(health.status("kvstore.KeyValueStore"), "SERVING");
  health.setAllServing(true);
  assert.deepEqual(watch.statuses, ["SERVING"], "watchers hear changes only");
});

Deno.test("shutdown turns everything NOT_SERVING for good and ends every watch", () => {
  const health = new Health(NODE_HEALTH_SERVICES, true);
  const whole = recorder();
  const data = recorder();
  const unknown = recorder();
  health.watch("", whole.watcher);
  health.watch("kvstore.KeyValueStore", data.watcher);
  health.watch("later.Service", unknown.watcher);
  health.enterShutdown();
  assert.deepEqual(whole.statuses, ["NOT_SERVING"]);
  assert.deepEqual(data.statuses, ["NOT_SERVING"]);
  assert.deepEqual([whole.closed(), data.closed(), unknown.closed()], [1, 1, 1]);
  health.setAllServing(true);
  assert.equal(health.status(""), "NOT_SERVING", "a node going away never says SERVING again");
  assert.equal(health.shuttingDown, true);
});

Deno.test("stopping a watch removes it, once", () => {
  const health = new Health(NODE_HEALTH_SERVICES, true);
  const watch = recorder();
  const stop = health.watch("", watch.watcher);
  assert.equal(health.watcherCount, 1);
  stop();
  stop();
  assert.equal(health.watcherCount, 0);
  health.setAllServing(false);
  assert.deepEqual(watch.statuses, []);
});

Deno.test("a slow watcher gets only the latest status once its stream drains", () => {
  const written: ServingStatus[] = [];
  let room = true;
  const sender = new LatestStatusSender((status) => {
    written.push(status);
    return room;
  });
  sender.send("SERVING");
  room = false;
  sender.send("NOT_SERVING");
  sender.send("SERVING");
  sender.send("NOT_SERVING");
  assert.deepEqual(written, ["SERVING", "NOT_SERVING"], "blocked after the second write");
  room = true;
  sender.drained();
  assert.deepEqual(written, ["SERVING", "NOT_SERVING"], "the latest pending equals the last sent: nothing to send");
  room = false;
  sender.send("SERVING");
  sender.drained();
  assert.deepEqual(written, ["SERVING", "NOT_SERVING", "SERVING"]);
});
