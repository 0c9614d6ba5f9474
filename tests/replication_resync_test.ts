/**
 * Resyncs with real processes: a replica killed and restarted, a replica paused past
 * the backlog, a link that times out and resumes partially, a master restarted under
 * running replicas. Partitions are simulated by pausing processes (SIGSTOP/SIGCONT).
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { countLog, info, startMaster, startReplica, waitForConvergence } from "./helpers/replication.ts";
import { freePort, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Writes `count` keys `prefix:i` in batches of concurrent sets. */
async function writeKeys(client: KvClient, prefix: string, count: number, value = "v".repeat(50)): Promise<void> {
  for (let start = 0; start < count; start += 100) {
    const end = Math.min(count, start + 100);
    await Promise.all(Array.from({ length: end - start }, (_, i) => client.set(`${prefix}:${start + i}`, value)));
  }
}

Deno.test("a replica killed and restarted while writes continue converges", opts, async () => {
  await using master = await startMaster();
  const replica = await startReplica(master);
  using client = new KvClient(master.address);
  let writing = true;
  let written = 0;
  const writer = (async () => {
    while (writing) {
      await client.set(`live:${written % 500}`, `${written}`);
      if (written % 10 === 0) await client.delete(`live:${(written + 250) % 500}`);
      written++;
    }
  })();
  try {
    await waitUntil(() => written > 200, "writes flow");
    await replica.kill();
    const before = written;
    await waitUntil(() => written > before + 200, "writes continue while the replica is down");
    await using restarted = await startReplica(master, [], { dataDir: replica.dataDir });
    await waitUntil(async () => (await info(restarted.address)).link_state === "up", "the restarted replica links up");
    const after = written;
    await waitUntil(() => written > after + 200, "writes continue after the restart");
    writing = false;
    await writer;
    await waitForConvergence(master, [restarted]);
    // The replica recovered its own data and seq from its files, so the master's backlog
    // (32 MiB by default) still reaches it: it needs only what it missed.
    assert.match(restarted.stderr, /Link to master up \(partialSync after seq \d+\)/);
    assert.doesNotMatch(restarted.stderr, /Full sync from master started/);
  } finally {
    writing = false;
    await writer.catch(() => {});
    await replica[Symbol.asyncDispose]();
  }
});

Deno.test("a replica paused past the backlog does a full resync and converges", opts, async () => {
  await using master = await startMaster(["--backlog-bytes", "1mb"]);
  await using replica = await startReplica(master);
  using client = new KvClient(master.address);
  await writeKeys(client, "before", 50);
  await waitForConvergence(master, [replica]);

  replica.signal("SIGSTOP");
  try {
    // 12 MB in batches of 400 KB against a 1 MiB backlog, and more than a master sends
    // ahead of what its replica has handled (SYNC_UNHANDLED_BYTES_MAX, 4 MiB). The
    // transport would take it all and hold it in the master's memory; instead the master
    // stops sending, and finds, while the replica is still paused, that the backlog has
    // moved past it.
    await writeKeys(client, "during", 3000, "x".repeat(4000));
    await master.waitForLog(/Replica \S+ fell behind the backlog and must resync/, 10_000);
  } finally {
    replica.signal("SIGCONT");
  }
  await writeKeys(client, "after", 50);
  await waitForConvergence(master, [replica]);
  assert.equal(countLog(replica, /Full sync from master started/), 2, "the initial sync and the resync");
  assert.match(replica.stderr, /Full sync from master started: the backlog starts at seq \d+, after the replica's seq/);
});

Deno.test("a replica paused inside the backlog catches up without a full resync", opts, async () => {
  await using master = await startMaster();
  await using replica = await startReplica(master);
  using client = new KvClient(master.address);
  await writeKeys(client, "before", 50);
  await waitForConvergence(master, [replica]);
  replica.signal("SIGSTOP");
  try {
    await writeKeys(client, "during", 1000);
  } finally {
    replica.signal("SIGCONT");
  }
  await waitForConvergence(master, [replica]);
  assert.equal(countLog(replica, /Full sync from master started/), 1, "only the initial sync");
});

Deno.test("a replica whose link times out resumes with a partialSync of what it missed", opts, async () => {
  await using master = await startMaster();
  await using replica = await startReplica(master, ["--repl-timeout-ms", "2000"]);
  using client = new KvClient(master.address);
  await writeKeys(client, "before", 50);
  await waitForConvergence(master, [replica]);

  // The replica misses writes while paused; then the master goes silent long enough for
  // the replica to drop the link. When the master comes back, the replica reconnects.
  replica.signal("SIGSTOP");
  await writeKeys(client, "missed", 300);
  master.signal("SIGSTOP");
  try {
    replica.signal("SIGCONT");
    await replica.waitForLog(/Link to master down: no message from the master for 2000 ms/, 15_000);
  } finally {
    master.signal("SIGCONT");
    replica.signal("SIGCONT");
  }
  await replica.waitForLog(/Link to master up \(partialSync after seq \d+\)/, 15_000);
  await writeKeys(client, "after", 50);
  await waitForConvergence(master, [replica]);
  assert.equal(countLog(replica, /Full sync from master started/), 1, "only the initial sync");
  assert.match(master.stderr, /resyncs with a partialSync/);
});

Deno.test(
  "a replica that was itself paused longer than its timeout keeps a link whose master kept pinging",
  opts,
  async () => {
    await using master = await startMaster();
    await using replica = await startReplica(master, ["--repl-timeout-ms", "2000"]);
    using client = new KvClient(master.address);
    await client.set("k", "v");
    await waitForConvergence(master, [replica]);

    // The master's pings wait, unread, in the paused replica's socket: when it resumes, its
    // link timer is overdue, but the link was never silent.
    replica.signal("SIGSTOP");
    await new Promise((resolve) => setTimeout(resolve, 3500));
    replica.signal("SIGCONT");
    await client.set("k", "v2");
    await waitForConvergence(master, [replica]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.doesNotMatch(replica.stderr, /Link to master down/);
  },
);

Deno.test("a master restarted under running replicas converges them to its new dataset", opts, async () => {
  const port = freePort();
  const master = await startServer({ address: `127.0.0.1:${port}` });
  await using replica1 = await startReplica(master, ["--repl-timeout-ms", "2000"]);
  await using replica2 = await startReplica(master, ["--repl-timeout-ms", "2000"]);
  try {
    using client = new KvClient(master.address);
    await writeKeys(client, "old", 100);
    await waitForConvergence(master, [replica1, replica2]);
    await master.stop("SIGTERM");
  } finally {
    await master[Symbol.asyncDispose]();
  }
  await replica1.waitForLog(/Link to master down/);
  // Restarted in a new, empty data directory, the master holds no data and a new
  // history: the replicas resync in full (tests/replication_restart_test.ts covers a
  // master that recovers its data).
  await using restarted = await startServer({ address: `127.0.0.1:${port}` });
  using client = new KvClient(restarted.address);
  await writeKeys(client, "new", 100);
  const dump = await waitForConvergence(restarted, [replica1, replica2]);
  assert.equal(dump.length, 100);
  assert.ok(dump.every(([key]) => key.startsWith("new:")));
  assert.equal(countLog(replica1, /Full sync from master started/), 2);
});
