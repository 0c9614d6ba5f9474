/**
 * Convergence under load and under expiry with real processes: writers keep going while
 * replicas are paused and killed, then every node's dataset digest must be the same; a
 * replica paused past a key's deadline must end with the master's rewrite of the key.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { digestOf, info, startMaster, startReplica, waitForConvergence } from "./helpers/replication.ts";
import { waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** One writer: a mix of every kind of write over a small key space, so keys are
 * rewritten, deleted, expired and given deadlines again and again. */
async function writeMix(client: KvClient, writer: number, until: () => boolean): Promise<number> {
  let ops = 0;
  while (!until()) {
    const key = `k${Math.floor(Math.random() * 300)}`;
    const pick = Math.random();
    if (pick < 0.45) await client.set(key, `w${writer}:${ops}`);
    else if (pick < 0.6) await client.delete(key);
    else if (pick < 0.75) await client.expire(key, 1 + Math.floor(Math.random() * 3));
    else if (pick < 0.8) await client.expire(key, 0);
    else if (pick < 0.95) await client.get(key);
    else {
      await client.mset([
        { key, value: `m${writer}:${ops}`, ttlMs: 500 + Math.floor(Math.random() * 2000) },
        { key: `${key}:pair`, value: `p${ops}` },
      ]);
    }
    ops++;
  }
  return ops;
}

Deno.test(
  "under continuous writes, with replicas paused and killed, every node ends with the same digest",
  opts,
  async () => {
    await using master = await startMaster(["--backlog-bytes", "64kb"]);
    await using steady = await startReplica(master);
    await using paused = await startReplica(master);
    const killed = await startReplica(master);
    let stop = false;
    const clients = Array.from({ length: 4 }, () => new KvClient(master.address));
    const writers = clients.map((client, i) => writeMix(client, i, () => stop));
    let restarted: Awaited<ReturnType<typeof startReplica>> | null = null;
    try {
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
      await sleep(500);
      paused.signal("SIGSTOP");
      await sleep(700);
      paused.signal("SIGCONT");
      await killed.kill();
      await sleep(500);
      restarted = await startReplica(master, [], { dataDir: killed.dataDir });
      paused.signal("SIGSTOP");
      await sleep(800);
      paused.signal("SIGCONT");
      await sleep(500);
    } finally {
      stop = true;
      paused.signal("SIGCONT");
      const ops = await Promise.all(writers);
      for (const client of clients) client.close();
      assert.ok(ops.reduce((a, b) => a + b, 0) > 500, `enough load: ${ops}`);
    }
    try {
      const replicas = [steady, paused, restarted!];
      // Let every deadline pass and the master's DELETEs go out, so the dataset stops
      // changing and the digests taken one after another describe the same state.
      await waitUntil(async () => (await info(master.address)).expiring_keys === "0", "all TTLs run out", 15_000);
      await waitForConvergence(master, replicas);
      const nodes = await Promise.all([master, ...replicas].map((node) => digestOf(node.address)));
      assert.ok(nodes[0].keys > 0, "the load left data");
      assert.equal(new Set(nodes.map((node) => node.digest)).size, 1, `digests: ${nodes.map((node) => node.digest)}`);
      assert.equal(new Set(nodes.map((node) => node.seq)).size, 1, `seqs: ${nodes.map((node) => node.seq)}`);
      assert.equal(new Set(nodes.map((node) => node.replid)).size, 1, "one history");
    } finally {
      await restarted?.[Symbol.asyncDispose]();
      await killed[Symbol.asyncDispose]();
    }
  },
);

Deno.test(
  "a replica paused past a key's deadline while the master rewrites the key ends with the rewrite",
  opts,
  async () => {
    await using master = await startMaster();
    await using replica = await startReplica(master);
    using client = new KvClient(master.address);
    using reader = new KvClient(replica.address);
    await client.set("rewritten", "old");
    await client.expire("rewritten", 1);
    await client.set("expired", "old");
    await client.expire("expired", 1);
    await client.set("renewed", "old");
    await client.expire("renewed", 1);
    await waitForConvergence(master, [replica]);

    replica.signal("SIGSTOP");
    try {
      // Before the deadline: "renewed" gets a later one. After it: the master expires the
      // keys and "rewritten" is written again.
      await client.expire("renewed", 3600);
      await waitUntil(async () => !(await client.contains("rewritten")), "the key expires on the master", 5000);
      await client.set("rewritten", "new");
      await waitUntil(async () => Number((await client.info()).expired_keys) >= 2, "the master expires both", 5000);
    } finally {
      replica.signal("SIGCONT");
    }
    await waitForConvergence(master, [replica]);
    assert.equal(await reader.get("rewritten"), "new");
    assert.equal(await reader.ttl("rewritten"), -1, "the rewrite carries no deadline");
    assert.equal(await reader.get("expired"), undefined);
    assert.equal(Number((await reader.info()).keys), 2, "the master's DELETE removed the expired key from the replica");
    assert.equal(await reader.get("renewed"), "old");
    assert.ok((await reader.ttl("renewed")) > 3500, "the later deadline arrived");
  },
);

Deno.test("a replica hides a key past its deadline but keeps it until the master's DELETE", opts, async () => {
  await using master = await startMaster();
  await using replica = await startReplica(master);
  using client = new KvClient(master.address);
  using reader = new KvClient(replica.address);
  await client.mset([{ key: "short", value: "v", ttlMs: 3000 }]);
  const [[, , expiresAtMs]] = await waitForConvergence(master, [replica]);
  master.signal("SIGSTOP");
  try {
    assert.equal(Number((await reader.info()).keys), 1);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAtMs! - Date.now()) + 200));
    assert.equal(await reader.get("short"), undefined, "hidden once its deadline passed");
    assert.equal(await reader.ttl("short"), -2);
    assert.equal(Number((await reader.info()).keys), 1, "but not removed: expiry belongs to the master");
  } finally {
    master.signal("SIGCONT");
  }
  await waitUntil(async () => Number((await reader.info()).keys) === 0, "the master's DELETE arrives", 10_000);
});
