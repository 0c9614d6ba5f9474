import assert from "node:assert/strict";
import { ReplicaRegistry } from "./replica_registry.ts";

function pull(id: string, ackedSeq = 0) {
  return { id, address: `${id}:1`, mode: "pull" as const, state: "online", ackedSeq };
}

Deno.test("acknowledgements only move forward", () => {
  const registry = new ReplicaRegistry();
  const record = registry.add(pull("r1"), 0);
  registry.ack(record, 10, 5);
  registry.ack(record, 7, 6);
  assert.equal(record.ackedSeq, 10);
  assert.equal(record.ackedAtMs, 5);
});

Deno.test("a reconnect replaces the old record, and removing the old one keeps the new", () => {
  const registry = new ReplicaRegistry();
  const old = registry.add(pull("r1"), 0);
  const fresh = registry.add(pull("r1", 4), 1);
  registry.remove(old);
  assert.equal(registry.get("r1"), fresh);
  registry.remove(fresh);
  assert.equal(registry.size, 0);
});

Deno.test("lag is told in commands and in the age of the oldest unacknowledged command", () => {
  const registry = new ReplicaRegistry();
  registry.ack(registry.add(pull("behind"), 0), 90, 0);
  registry.ack(registry.add(pull("current"), 0), 100, 0);
  const committedAt = (seq: number) => (seq >= 50 ? 1000 + seq : undefined);
  const status = registry.status(100, 2000, committedAt, 1050);
  assert.deepEqual(status.map((s) => [s.id, s.lagSeqs, s.lagMs]), [["behind", 10, 2000 - 1091], ["current", 0, 0]]);
});

Deno.test("lag of a replica behind the backlog is at least the age of the oldest command held", () => {
  const registry = new ReplicaRegistry();
  registry.add(pull("far", 3), 0);
  const [status] = registry.status(100, 5000, () => undefined, 4000);
  assert.equal(status.lagMs, 1000);
});

Deno.test("a Wait resolves when enough replicas acknowledge its target seq", () => {
  const registry = new ReplicaRegistry();
  const r1 = registry.add(pull("r1"), 0);
  const r2 = registry.add(pull("r2"), 0);
  const answers: number[] = [];
  assert.equal(registry.addWaiter({ targetSeq: 5, replicasWanted: 2, resolve: (n) => answers.push(n) }), true);
  registry.ack(r1, 5, 1);
  assert.deepEqual(answers, []);
  registry.ack(r2, 6, 2);
  assert.deepEqual(answers, [2]);
  assert.equal(registry.waiterCount, 0);
});

Deno.test("a Wait already satisfied resolves at once, and a timed-out one with the count reached", () => {
  const registry = new ReplicaRegistry();
  registry.add(pull("r1", 9), 0);
  const answers: number[] = [];
  assert.equal(registry.addWaiter({ targetSeq: 9, replicasWanted: 1, resolve: (n) => answers.push(n) }), false);
  assert.equal(registry.addWaiter({ targetSeq: 0, replicasWanted: 0, resolve: (n) => answers.push(n) }), false);
  const waiter = { targetSeq: 9, replicasWanted: 3, resolve: (n: number) => answers.push(n) };
  registry.addWaiter(waiter);
  registry.cancelWait(waiter);
  registry.cancelWait(waiter);
  assert.deepEqual(answers, [1, 1, 1], "each waiter is answered once");
});

Deno.test("a replica reached by two links counts once in a Wait", () => {
  const registry = new ReplicaRegistry();
  const pulled = registry.add(pull("r1", 5), 0);
  const pushed = registry.add({ id: "push:r1:1", address: "r1:1", mode: "push", state: "online", ackedSeq: 5 }, 0);
  assert.equal(registry.countAcked(5), 2, "two processes, as far as the master knows");
  pushed.node = pulled.id;
  assert.equal(registry.countAcked(5), 1);
  const answers: number[] = [];
  const waiter = { targetSeq: 5, replicasWanted: 2, resolve: (n: number) => answers.push(n) };
  assert.equal(registry.addWaiter(waiter), true);
  registry.ack(registry.add(pull("r2", 0), 0), 5, 1);
  assert.deepEqual(answers, [2]);
});

Deno.test("behind lists each replica process short of a seq once, leaving out push links that cannot reach theirs", () => {
  const registry = new ReplicaRegistry();
  const done = registry.add(pull("done", 10), 0);
  registry.add(pull("slow", 4), 0);
  // One process reached by pull and by push: its pull link has the seq, so it is done.
  const twicePush = registry.add({ id: "push:b:1", address: "b:1", mode: "push", state: "online", ackedSeq: 3 }, 0);
  twicePush.node = "done";
  const down = registry.add({ id: "push:c:1", address: "c:1", mode: "push", state: "online", ackedSeq: 2 }, 0);
  const changes: string[] = [];
  const unregister = registry.onChange(() => changes.push("changed"));
  assert.deepEqual(registry.behind(10).map((record) => record.id), ["slow", "push:c:1"]);
  registry.setState(down, "down");
  assert.deepEqual(registry.behind(10).map((record) => record.id), ["slow"], "an unreachable push replica");
  registry.ack(registry.get("slow")!, 10, 1);
  assert.deepEqual(registry.behind(10), []);
  assert.equal(changes.length, 2, "a state change and an acknowledgement");
  registry.ack(done, 10, 2);
  assert.equal(changes.length, 2, "an acknowledgement that moves nothing changes nothing");
  registry.remove(done);
  assert.equal(changes.length, 3, "a replica gone");
  unregister();
  registry.add(pull("late"), 3);
  assert.equal(changes.length, 3, "no listener after unregistering");
});

Deno.test("a push link is not behind a seq committed before it started: it has nothing to push up to there", () => {
  const registry = new ReplicaRegistry();
  // A master restarted at seq 100 with --replicas pushes from 101; its replica answered
  // nothing yet (nothing was written since), so the master cannot wait for it at shutdown.
  const push = registry.add({
    id: "push:c:1",
    address: "c:1",
    mode: "push",
    state: "online",
    ackedSeq: -1,
    firstSeq: 101,
  }, 0);
  assert.deepEqual(registry.behind(100), [], "nothing to deliver up to seq 100");
  assert.deepEqual(registry.behind(0), [], "nor on a master that never took a write");
  assert.deepEqual(registry.behind(101).map((record) => record.id), ["push:c:1"], "seq 101 is its to push");
  registry.ack(push, 101, 1);
  assert.deepEqual(registry.behind(101), []);
});

Deno.test("a master that holds no write shows no lag, whatever a replica acknowledged", () => {
  const registry = new ReplicaRegistry();
  registry.add({ id: "push:c:1", address: "c:1", mode: "push", state: "online", ackedSeq: -1, firstSeq: 1 }, 0);
  const [status] = registry.status(0, 5000, () => undefined, undefined);
  assert.deepEqual([status.ackedSeq, status.lagSeqs, status.lagMs], [-1, 0, 0]);
});
