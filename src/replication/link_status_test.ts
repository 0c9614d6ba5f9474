import assert from "node:assert/strict";
import { LinkStatus } from "./link_status.ts";

const LIMITS = { delayMsMin: 100, delayMsMax: 2000 };

Deno.test("an outage is logged once when it starts and once when it ends, not at every attempt", () => {
  const link = new LinkStatus(LIMITS, 0);
  const logged: string[] = [];
  const log = (event: { message: string } | null) => event !== null && logged.push(event.message);
  log(link.connecting());
  log(link.down("connection refused", 10));
  for (let attempt = 0; attempt < 5; attempt++) {
    log(link.connecting());
    log(link.down("connection refused", 100 + attempt));
  }
  log(link.connecting());
  log(link.up("partialSync after seq 7", 1000));
  assert.deepEqual(logged, [
    "Link to master down: connection refused",
    "Link to master up (partialSync after seq 7) after 1000 ms",
  ]);
  assert.equal(link.state, "up");
  assert.equal(link.downForMs(5000), 0);
});

Deno.test("a new reason for an ongoing outage is logged once", () => {
  const link = new LinkStatus(LIMITS, 0);
  const messages = [
    link.down("connection refused", 1),
    link.down("connection refused", 2),
    link.down("the node at 127.0.0.1:1 is a replica", 3),
    link.down("the node at 127.0.0.1:1 is a replica", 4),
  ].map((event) => event?.message ?? null);
  assert.deepEqual(messages, [
    "Link to master down: connection refused",
    null,
    "Link to master still down: the node at 127.0.0.1:1 is a replica",
    null,
  ]);
});

Deno.test("reasons that take turns during one outage are each logged once, up to a bound", () => {
  const link = new LinkStatus(LIMITS, 0);
  const reasons = ["connection refused", "the connection was reset", "the server closed the connection"];
  const logged: string[] = [];
  for (let attempt = 0; attempt < 30; attempt++) {
    const event = link.down(reasons[attempt % reasons.length], attempt);
    if (event !== null) logged.push(event.message);
  }
  assert.deepEqual(logged, [
    "Link to master down: connection refused",
    "Link to master still down: the connection was reset",
    "Link to master still down: the server closed the connection",
  ]);
  for (let reason = 0; reason < 20; reason++) link.down(`reason ${reason}`, 100 + reason);
  assert.equal(link.lastError, "reason 19", "the last reason is kept, logged or not");
});

Deno.test("a fullSync that fails again and again for one reason is logged once, not at every retry", () => {
  const link = new LinkStatus(LIMITS, 0);
  const logged: string[] = [];
  const log = (event: { message: string } | null) => event !== null && logged.push(event.message);
  for (let attempt = 0; attempt < 4; attempt++) {
    log(link.connecting());
    log(link.syncing("the replica holds no history"));
    log(link.down("persistence: Cannot replace the data files: disk full", 10 + attempt));
  }
  log(link.connecting());
  log(link.syncing("the replica holds no history"));
  log(link.up("fullSync of 3 keys at seq 9", 100));
  // A later outage logs its fullSync again.
  log(link.down("stream ended", 200));
  log(link.connecting());
  log(link.syncing("the replica holds no history"));
  assert.deepEqual(logged, [
    "Full sync from master started: the replica holds no history",
    "Link to master down: persistence: Cannot replace the data files: disk full",
    "Link to master up (fullSync of 3 keys at seq 9) after 100 ms",
    "Link to master down: stream ended",
    "Full sync from master started: the replica holds no history",
  ]);
});

Deno.test("a link that was up logs its loss, and the time down counts from then", () => {
  const link = new LinkStatus(LIMITS, 0);
  link.up("fullSync", 50);
  assert.equal(link.firstSyncDone, true);
  assert.equal(link.down("stream ended", 200)?.level, "warn");
  assert.equal(link.state, "down");
  assert.equal(link.downForMs(450), 250);
  assert.equal(link.lastError, "stream ended");
});

Deno.test("the reconnect delay doubles with each failure up to the maximum and resets once up", () => {
  const link = new LinkStatus(LIMITS, 0);
  const delays: number[] = [];
  for (let i = 0; i < 7; i++) {
    link.down("refused", i);
    delays.push(link.nextDelayMs());
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
  link.up("partialSync", 10);
  assert.equal(link.nextDelayMs(), 100);
});

Deno.test("push-only is announced once and stays while the replica keeps asking", () => {
  const link = new LinkStatus(LIMITS, 0);
  assert.notEqual(link.pushOnly(5), null);
  link.connecting();
  assert.equal(link.state, "push-only");
  assert.equal(link.down("still unimplemented", 6), null);
  assert.equal(link.pushOnly(7), null);
  assert.equal(link.state, "push-only");
  assert.equal(
    link.syncing("the replica holds no history")?.message,
    "Full sync from master started: the replica holds no history",
  );
});
