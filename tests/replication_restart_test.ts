/**
 * Replication across restarts of nodes that keep their data: seqs keep growing, a
 * replica resumes from its own last seq, a master restarted under running replicas
 * converges them without a fullSync.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { countLog, info, startReplica, waitForConvergence } from "./helpers/replication.ts";
import { freePort, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function withTempDir<T>(use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-restart-" });
  try {
    return await use(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

Deno.test("seqs keep increasing across a master's restart", opts, async () => {
  await withTempDir(async (dataDir) => {
    const first = await startServer({ dataDir });
    try {
      using client = new KvClient(first.address);
      for (let i = 0; i < 10; i++) await client.set(`k${i}`, "v");
      assert.equal((await info(first.address)).last_seq, "10");
      assert.equal((await first.stop("SIGTERM")).code, 0);
    } finally {
      await first[Symbol.asyncDispose]();
    }
    await using second = await startServer({ dataDir });
    using client = new KvClient(second.address);
    assert.equal((await info(second.address)).last_seq, "10", "the seq is recovered with the data");
    await client.set("after", "restart");
    assert.equal((await info(second.address)).last_seq, "11");
  });
});

Deno.test("a replica restarted with its data resumes from its own last seq", opts, async () => {
  await withTempDir(async (replicaDir) => {
    await using master = await startServer();
    using client = new KvClient(master.address);
    await client.mset(Array.from({ length: 500 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
    const replica = await startReplica(master, [], { dataDir: replicaDir });
    try {
      await waitForConvergence(master, [replica]);
      await replica.kill();
    } finally {
      await replica[Symbol.asyncDispose]();
    }
    // The master says once that its replica went, with what the replica had acknowledged.
    await master.waitForLog(/INFO {2}replication: Replica \S+ disconnected .*ackedSeq=500/);
    for (let i = 0; i < 50; i++) await client.set(`while-down:${i}`, "v");
    await using restarted = await startReplica(master, [], { dataDir: replicaDir });
    await waitForConvergence(master, [restarted]);
    assert.match(restarted.stderr, /Following master \S+ replid=\S+ seq=500/, "it recovered its own seq");
    assert.match(restarted.stderr, /Link to master up \(partialSync after seq 500\)/);
    assert.equal(countLog(restarted, /Full sync from master started/), 0);
  });
});

Deno.test(
  "a master restarted with its data converges running replicas partially",
  opts,
  async () => {
    await withTempDir(async (masterDir) => {
      const address = `127.0.0.1:${freePort()}`;
      const master = await startServer({ dataDir: masterDir, address });
      await using replica1 = await startReplica(master, ["--repl-timeout-ms", "2000"]);
      await using replica2 = await startReplica(master, ["--repl-timeout-ms", "2000"]);
      try {
        using client = new KvClient(master.address);
        await client.mset(Array.from({ length: 300 }, (_, i) => ({ key: `old:${i}`, value: "v" })));
        await waitForConvergence(master, [replica1, replica2]);
        assert.equal((await master.stop("SIGTERM")).code, 0);
        assert.match(master.stderr, /Every replica has seq 300, the last write replicas=2 waitedMs=\d+/);
        assert.doesNotMatch(master.stderr, /Waiting up to/, "replicas that have every write are not waited for");
      } finally {
        await master[Symbol.asyncDispose]();
      }
      await using restarted = await startServer({ dataDir: masterDir, address });
      const restartedInfo = await info(restarted.address);
      assert.equal(restartedInfo.last_seq, "300");
      assert.notEqual(restartedInfo.previous_replid, "", "a restarted master continues its previous history");
      using client = new KvClient(restarted.address);
      await client.mset(Array.from({ length: 100 }, (_, i) => ({ key: `new:${i}`, value: "v" })));
      const dump = await waitForConvergence(restarted, [replica1, replica2]);
      assert.equal(dump.length, 400);
      for (const replica of [replica1, replica2]) {
        assert.match(replica.stderr, /Link to master up \(partialSync after seq 300\)/);
        assert.equal(countLog(replica, /Full sync from master started/), 1, "only the first sync");
      }
    });
  },
);
