/**
 * A master's graceful shutdown and its replicas: once it takes no more writes, it waits
 * a bounded time (--shutdown-replica-wait-ms) for its replicas to acknowledge its last
 * write, so a replica that was merely behind has every write when the master is gone,
 * and one that is paused or gone costs at most the bound. A second signal ends the wait.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { SHUTDOWN_GRACE_MS } from "../src/config/limits.ts";
import { CLIENT_TRANSPORT_LIMITS, createKvstoreClient, type grpc } from "../src/transport/grpc.ts";
import type { SyncMessage, SyncRequest } from "../src/transport/messages.ts";
import { countLog, digestOf, startReplica, waitForConvergence } from "./helpers/replication.ts";
import { freePort, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Opens a Sync stream to `address` as a new, empty replica would, and resolves with how
 * the node answers: the status it ends the stream with, or the type of its first message
 * (it serves the sync). Bounded: a node that says nothing within 5 s fails the test. */
async function syncAnswer(address: string): Promise<string> {
  const client = createKvstoreClient(address, CLIENT_TRANSPORT_LIMITS);
  try {
    const open =
      (client as unknown as Record<string, (options: object) => grpc.ClientDuplexStream<SyncRequest, SyncMessage>>)
        .Sync;
    const call = open.call(client, { deadline: Date.now() + 5000 });
    const answer = new Promise<string>((resolve) => {
      call.on("data", (message: SyncMessage) => resolve(`served ${message.type}`));
      call.on("error", (error: grpc.ServiceError) => resolve(`${error.code}: ${error.details}`));
    });
    call.write({ replica_id: "probe-replica", replid: "", seq: 0, address: "", acked_seq: 0, reports_handled: true });
    const result = await answer;
    call.cancel();
    return result;
  } finally {
    client.close();
  }
}

/** The bound the first test gives its master, in ms. */
const WAIT_MS = 3000;

Deno.test(
  "a master shutting down waits for a lagging replica to get its last write, but not past its bound for a paused one",
  opts,
  async () => {
    await using master = await startServer({ args: ["--shutdown-replica-wait-ms", String(WAIT_MS)] });
    await using lagging = await startReplica(master);
    await using paused = await startReplica(master);
    using client = new KvClient(master.address);
    await client.mset(Array.from({ length: 200 }, (_, i) => ({ key: `before:${i}`, value: "v" })));
    await waitForConvergence(master, [lagging, paused]);

    // Both replicas stop reading; the master commits 100 more writes they do not have.
    lagging.signal("SIGSTOP");
    paused.signal("SIGSTOP");
    try {
      for (let i = 0; i < 10; i++) {
        await client.mset(Array.from({ length: 10 }, (_, j) => ({ key: `during:${i}:${j}`, value: "v" })));
      }
      const last = await digestOf(master.address);
      assert.equal(last.seq, 300);

      const startedMs = performance.now();
      master.signal("SIGTERM");
      await master.waitForLog(/Waiting up to 3000 ms for 2 replicas to acknowledge seq 300 before shutting down/);
      // Refused from now on, and said why; reads are still answered while it waits.
      await assert.rejects(
        client.set("late", "v"),
        /UNAVAILABLE: server: Cannot set key "late": this node is shutting down/,
      );
      assert.equal(await client.get("before:0"), "v");
      lagging.signal("SIGCONT");
      const status = await master.exited;
      const elapsedMs = performance.now() - startedMs;
      assert.equal(status.code, 0, master.stderr);
      const [, waitedMs] = master.stderr.match(
        new RegExp(
          `Shutting down before 1 replica acknowledged seq 300, the last write: ${paused.address} \\(pull\\) has seq 200; ` +
            `waited (\\d+) ms \\(--shutdown-replica-wait-ms 3000\\)`,
        ),
      ) ?? assert.fail(`no line naming the paused replica in:\n${master.stderr}`);
      assert.ok(Number(waitedMs) >= WAIT_MS && Number(waitedMs) < WAIT_MS + 1000, `waited ${waitedMs} ms`);
      // After the wait, the paused replica's open connection still holds the server's
      // close for its grace period (SHUTDOWN_GRACE_MS, 5 s): the process ends within both.
      assert.ok(elapsedMs < WAIT_MS + SHUTDOWN_GRACE_MS + 3000, `exited after ${Math.round(elapsedMs)} ms`);

      // The replica that was only behind holds the master's last write, exactly.
      const got = await digestOf(lagging.address);
      assert.deepEqual(got, last, "the lagging replica has everything the master had");
    } finally {
      lagging.signal("SIGCONT");
      paused.signal("SIGCONT");
    }
  },
);

Deno.test("a second signal while a master waits for a paused replica exits at once", opts, async () => {
  await using master = await startServer();
  await using replica = await startReplica(master);
  using client = new KvClient(master.address);
  await client.set("k", "v1");
  await waitForConvergence(master, [replica]);
  replica.signal("SIGSTOP");
  try {
    await client.set("k", "v2");
    master.signal("SIGTERM");
    // The default bound, Redis's: 10 s.
    await master.waitForLog(/Waiting up to 10000 ms for 1 replica to acknowledge seq 2/);
    const startedMs = performance.now();
    const status = await master.stop("SIGTERM", 4000);
    assert.equal(status.code, 130, master.stderr);
    assert.ok(performance.now() - startedMs < 4000);
    assert.match(master.stderr, /Second signal: exiting without waiting/);
  } finally {
    replica.signal("SIGCONT");
  }
});

Deno.test(
  "a master that is shutting down refuses a new replica's Sync rather than start a fullSync",
  opts,
  async () => {
    await using master = await startServer();
    await using replica = await startReplica(master);
    using client = new KvClient(master.address);
    await client.set("k", "v1");
    await waitForConvergence(master, [replica]);
    // A replica answers a Sync with its refusal too (not grpc-js's UNKNOWN "Unknown error").
    assert.match(await syncAnswer(replica.address), /^9: replication: Cannot serve Sync: this node is a replica of /);
    replica.signal("SIGSTOP");
    try {
      await client.set("k", "v2");
      master.signal("SIGTERM");
      await master.waitForLog(/Waiting up to 10000 ms for 1 replica to acknowledge seq 2/);
      const fullSyncs = countLog(master, /needs a fullSync/);
      assert.equal(
        await syncAnswer(master.address),
        "14: replication: Cannot serve Sync: this node is shutting down; retry once it has restarted, or follow the " +
          "node that takes its place",
      );
      assert.equal(countLog(master, /needs a fullSync/), fullSyncs, "no fullSync began for the refused replica");
      assert.equal((await master.stop("SIGTERM", 4000)).code, 130, master.stderr);
    } finally {
      replica.signal("SIGCONT");
    }
  },
);

Deno.test(
  "a push to a replica that never answers does not hold the master's shutdown past its bound",
  opts,
  async () => {
    // A listener that accepts connections and never speaks: a push to it waits for its deadline.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })().catch(() => {});
    try {
      const silent = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
      await using master = await startServer({ args: ["--replicas", silent, "--shutdown-replica-wait-ms", "500"] });
      using client = new KvClient(master.address);
      await client.set("k", "v");
      const startedMs = performance.now();
      const status = await master.stop("SIGTERM");
      const elapsedMs = performance.now() - startedMs;
      assert.equal(status.code, 0, master.stderr);
      assert.match(
        master.stderr,
        new RegExp(`Shutting down before 1 replica acknowledged seq 1, the last write: ${silent}`),
      );
      assert.doesNotMatch(master.stderr, /Cannot push to replica/, "stopping is no push failure");
      // Its push call's deadline is PUSH_CALL_DEADLINE_MS (5 s): stopping cancels it.
      assert.ok(elapsedMs < 500 + 2500, `exited after ${Math.round(elapsedMs)} ms`);
    } finally {
      listener.close();
      for (const conn of held) conn.close();
      await accepting;
    }
  },
);

Deno.test(
  "a master with --replicas stopped before any write does not wait for its push replicas, up or not",
  opts,
  async () => {
    // Its push links push only what is committed after the start: with no write since,
    // there is nothing for them to deliver, whether their replicas answer or not.
    await using replica = await startServer();
    const nobody = `127.0.0.1:${freePort()}`;
    await using master = await startServer({ args: ["--replicas", `${replica.address},${nobody}`] });
    const startedMs = performance.now();
    const status = await master.stop("SIGTERM");
    const elapsedMs = performance.now() - startedMs;
    assert.equal(status.code, 0, master.stderr);
    assert.doesNotMatch(master.stderr, /Waiting up to|Shutting down before/);
    // The default bound is 10 s; stopping takes well under one.
    assert.ok(elapsedMs < 3000, `exited after ${Math.round(elapsedMs)} ms`);
  },
);
