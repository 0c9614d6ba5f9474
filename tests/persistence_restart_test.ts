/**
 * Restarts of a real node on its data directory: what was acknowledged comes back,
 * deadlines stay absolute, deletions stay, the log is cut after snapshots, and the
 * node refuses calls while it loads.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { KvClient, KvClientError } from "../src/client/client.ts";
import { DenoStorage } from "../src/persistence/deno_storage.ts";
import { FilePersistence } from "../src/persistence/file_persistence.ts";
import { silentLogger } from "../src/logging/logger.ts";
import { Store } from "../src/store/store.ts";
import { digestOf, fileSize, LOG_FILE, SNAPSHOT_FILE, startOn, tempDataDir } from "./helpers/durability.ts";
import { runKvstore, spawnKvstore, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "smoke: acknowledged writes survive SIGKILL, and the digest is the same after the restart",
  opts,
  async () => {
    await using dir = await tempDataDir();
    let before;
    {
      await using server = await startOn(dir.path);
      using client = new KvClient(server.address);
      await client.set("a", "1");
      await client.set("b", "2");
      await client.delete("a");
      await client.mset([{ key: "c", value: "3", expiresAtMs: Date.now() + 3_600_000 }, { key: "d", value: "4" }]);
      await client.set("ключ 🔑", "é€😀\u0000");
      before = await digestOf(server.address);
      await server.kill();
    }
    await using server = await startOn(dir.path);
    using client = new KvClient(server.address);
    assert.equal(await client.get("a"), undefined);
    assert.equal(await client.get("b"), "2");
    assert.equal(await client.get("ключ 🔑"), "é€😀\u0000");
    assert.deepEqual(await digestOf(server.address), before);
    assert.match(server.stderr, /Loaded the dataset keys=4 snapshotKeys=0 recordsReplayed=6 seq=6/);
  },
);

Deno.test(
  "a TTL keeps its absolute deadline across a restart, and a key that expired while down is deleted through the log",
  opts,
  async () => {
    await using dir = await tempDataDir();
    const deadline = Date.now() + 3_600_000;
    {
      await using server = await startOn(dir.path);
      using client = new KvClient(server.address);
      await client.mset([{ key: "long", value: "v", expiresAtMs: deadline }]);
      await client.set("short", "v");
      await client.expire("short", 1);
      await client.set("plain", "v");
      await server.kill();
    }
    await new Promise((resolve) => setTimeout(resolve, 1200));
    let seqAfterExpiry;
    {
      await using server = await startOn(dir.path);
      using client = new KvClient(server.address);
      const page = await client.scan({ includeValues: true, limit: 100 });
      assert.deepEqual(
        page.entries.map((entry) => [entry.key, entry.expiresAtMs]).sort(),
        [["long", deadline], ["plain", null]],
      );
      await server.waitForLog(/Deleted the keys whose deadline passed while the node was down deleted=1/);
      // The deletion is a logged write like any other: seq 5 after the four writes.
      await waitUntil(async () => Number((await client.info()).last_seq) === 5, "the deletion commits");
      seqAfterExpiry = 5;
      await server.kill();
    }
    await using server = await startOn(dir.path);
    using client = new KvClient(server.address);
    assert.equal(Number((await client.info()).last_seq), seqAfterExpiry);
    assert.equal(Number((await client.info()).keys), 2, "the expired key is gone from the dataset itself");
    const ttl = await client.ttl("long");
    assert.ok(ttl > 3590 && ttl <= 3600, `ttl ${ttl}`);
  },
);

Deno.test("deleted keys stay deleted across snapshots, log cuts and restarts", opts, async () => {
  await using dir = await tempDataDir();
  {
    await using server = await startOn(dir.path);
    using client = new KvClient(server.address);
    await client.mset(Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
    await client.snapshot();
    for (let i = 0; i < 50; i += 2) await client.delete(`k${i}`);
    await client.snapshot();
    await client.delete("k1");
    await server.kill();
  }
  await using server = await startOn(dir.path);
  using client = new KvClient(server.address);
  const values = await client.mget(Array.from({ length: 50 }, (_, i) => `k${i}`));
  const present = values.flatMap((value, i) => value === undefined ? [] : [i]);
  assert.deepEqual(present, Array.from({ length: 24 }, (_, i) => 2 * i + 3));
});

Deno.test("smoke: kvstore snapshot writes kvstore.rdb and cuts the log to what follows it", opts, async () => {
  await using dir = await tempDataDir();
  let digest;
  {
    await using server = await startOn(dir.path);
    using client = new KvClient(server.address);
    for (let i = 0; i < 20; i++) {
      await client.mset(Array.from({ length: 10 }, (_, j) => ({ key: `k${j}`, value: "x".repeat(1000) + i })));
    }
    const logBefore = Number((await client.info()).log_bytes);
    assert.ok(logBefore > 200_000, `${logBefore} bytes of log`);
    assert.equal(await fileSize(join(dir.path, LOG_FILE)), logBefore);

    const result = await runKvstore(["snapshot", "--endpoint", server.address]);
    assert.equal(result.code, 0, result.stderr);
    const [wrote, cut] = result.stdout.trim().split("\n");
    assert.match(wrote, /^Wrote .*kvstore\.rdb: 10 keys, [\d.]+ KiB, seq 200, in \d+\.\d\d s$/);
    assert.match(cut, /^Cut the log from [\d.]+ KiB to \d+ bytes$/);

    const info = await client.info();
    assert.ok(Number(info.log_bytes) < 1000, `log cut to ${info.log_bytes} bytes`);
    assert.equal(await fileSize(join(dir.path, LOG_FILE)), Number(info.log_bytes));
    assert.equal(await fileSize(join(dir.path, SNAPSHOT_FILE)), Number(info.last_snapshot_bytes));
    assert.equal(info.last_snapshot_status, "ok");
    assert.equal(Number(info.last_snapshot_keys), 10);
    assert.equal(Number(info.changes_since_snapshot), 0);
    await client.set("after", "snapshot");
    digest = await digestOf(server.address);
    await server.kill();
  }
  await using server = await startOn(dir.path);
  assert.deepEqual(await digestOf(server.address), digest);
  assert.match(server.stderr, /Loaded the dataset keys=11 snapshotKeys=10 recordsReplayed=1 /);
});

Deno.test("graceful shutdown writes a snapshot when the data changed, and the next start loads it", opts, async () => {
  await using dir = await tempDataDir();
  {
    await using server = await startOn(dir.path);
    using client = new KvClient(server.address);
    await client.mset(Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
    assert.equal((await server.stop("SIGTERM")).code, 0);
    assert.match(server.stderr, /Snapshot written .*keys=100/);
  }
  {
    await using server = await startOn(dir.path);
    assert.match(server.stderr, /Loaded the dataset keys=100 snapshotKeys=100 recordsReplayed=0 /);
    assert.equal((await server.stop("SIGTERM")).code, 0);
    assert.doesNotMatch(server.stderr, /Snapshot written/, "nothing changed, so no new snapshot");
  }
});

Deno.test("a second node on the same data directory is refused at once", opts, async () => {
  await using dir = await tempDataDir();
  await using first = await startOn(dir.path);
  const result = await runKvstore(["--address", "127.0.0.1:0", "--data-dir", dir.path], { timeoutMs: 10_000 });
  assert.equal(result.code, 1, result.stderr);
  assert.match(
    result.stderr.trim().split("\n").at(-1)!,
    new RegExp(
      `^kvstore: Cannot use data directory ".*": another kvstore process \\(pid ${first.pid}\\) is using it`,
    ),
  );
  assert.ok(first.running);
});

Deno.test("calls made while the node loads its dataset get UNAVAILABLE saying so", opts, async () => {
  await using dir = await tempDataDir();
  // A dataset large enough that loading takes a noticeable time: 300k keys written
  // straight into a snapshot with the node's own writer.
  const persistence = new FilePersistence({
    storage: new DenoStorage(dir.path),
    dataDir: dir.path,
    fsync: "no",
    logger: silentLogger(),
    clock: Date.now,
  });
  const store = new Store();
  await persistence.recover(store);
  for (let i = 0; i < 300_000; i++) {
    store.apply({ kind: "set", key: `key:${i}`, value: "v".repeat(100), expiresAtMs: null });
  }
  await persistence.replaceWith(store, { replid: persistence.replid, seq: 300_000 });
  await persistence.close();

  const child = spawnKvstore(["--address", "127.0.0.1:0", "--data-dir", dir.path, "--snapshot-interval-seconds", "0"]);
  try {
    let log = "";
    const decoder = new TextDecoder();
    const reader = child.stderr.getReader();
    let address = "";
    while (address === "") {
      const { value, done } = await reader.read();
      if (done) throw new Error(`kvstore exited before loading:\n${log}`);
      log += decoder.decode(value, { stream: true });
      address = /Loading the dataset.* address=(\S+)/.exec(log)?.[1] ?? "";
    }
    void (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })();
    using client = new KvClient(address, { deadlineMs: 2000 });
    const refusals: string[] = [];
    // Bounded: a node that died while loading answers UNAVAILABLE (no connection) for ever.
    const deadlineMs = Date.now() + 120_000;
    while (true) {
      if (Date.now() > deadlineMs) throw new Error(`the node did not serve within 120 s:\n${log}`);
      try {
        assert.equal((await client.get("key:299999"))?.length, 100);
        break;
      } catch (error) {
        if (!(error instanceof KvClientError) || error.codeName !== "UNAVAILABLE") throw error;
        if (error.details.includes("loading")) refusals.push(error.details);
      }
    }
    assert.ok(refusals.length > 0, "at least one call was refused while loading");
    assert.match(
      refusals[0],
      /^server: Cannot serve Get yet: the node is loading its dataset from .* \(\d+ s so far\); retry in a moment$/,
    );
    assert.equal(Number((await client.info()).keys), 300_000);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});
