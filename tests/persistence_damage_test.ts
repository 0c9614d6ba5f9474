/**
 * Damaged data files with real processes: start-up stops with one line naming the file,
 * the offset and the repair command; `kvstore repair` cuts the damage off (setting it
 * aside), after which the node starts with everything before the damage.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { KvClient } from "../src/client/client.ts";
import { damageByte, LOG_FILE, SNAPSHOT_FILE, startOn, tempDataDir } from "./helpers/durability.ts";
import { runKvstore } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "";
}

async function startFails(dataDir: string): Promise<string> {
  const result = await runKvstore(["--address", "127.0.0.1:0", "--data-dir", dataDir], { timeoutMs: 15_000 });
  assert.equal(result.code, 1, result.stderr);
  return lastLine(result.stderr);
}

Deno.test(
  "smoke: a damaged record in the middle of the log stops start-up; kvstore repair keeps what precedes it",
  opts,
  async () => {
    await using dir = await tempDataDir();
    let damageAt: number;
    {
      await using server = await startOn(dir.path);
      using client = new KvClient(server.address);
      await client.set("a", "1");
      await client.set("b", "2");
      damageAt = Number((await client.info()).log_bytes);
      await client.set("c", "3");
      await client.set("d", "4");
      await server.kill();
    }
    await damageByte(join(dir.path, LOG_FILE), damageAt + 20);
    const line = await startFails(dir.path);
    assert.match(
      line,
      new RegExp(
        `^kvstore: recovery: Cannot load ".*kvstore\\.aof" at offset ${damageAt}: the frame's payload fails its ` +
          `checksum\\. Nothing was loaded\\. .* kvstore repair --data-dir \\S+$`,
      ),
    );

    const check = await runKvstore(["repair", "--data-dir", dir.path, "--check"]);
    assert.equal(check.code, 1, check.stderr);
    assert.match(check.stdout, /^Problem: Cannot load ".*kvstore\.aof" at offset \d+/);
    assert.match(check.stdout, /Run kvstore repair --data-dir .* \(without --check\) to fix it\./);

    const repair = await runKvstore(["repair", "--data-dir", dir.path]);
    assert.equal(repair.code, 0, repair.stderr);
    assert.match(
      repair.stdout,
      new RegExp(`Fixed: cut .*kvstore\\.aof at offset ${damageAt}, keeping the batches before it`),
    );
    assert.match(
      repair.stdout,
      /The data directory now loads: 2 keys, seq 2, replid [0-9a-f]{40}, digest [0-9a-f]{16}/,
    );
    const setAside = [...Deno.readDirSync(dir.path)].map((entry) => entry.name).filter((name) =>
      name.includes(".cut-")
    );
    assert.equal(setAside.length, 1, "the cut-off records are kept aside");

    await using server = await startOn(dir.path);
    using client = new KvClient(server.address);
    assert.deepEqual(await client.mget(["a", "b", "c", "d"]), ["1", "2", undefined, undefined]);
    await client.set("e", "5");
    const again = await runKvstore(["repair", "--data-dir", dir.path]);
    assert.equal(again.code, 3, "repair refuses a directory a node is using");
    assert.match(again.stderr, /another kvstore process \(pid \d+\) is using it/);
  },
);

Deno.test(
  "a damaged snapshot stops start-up naming it; repair keeps its intact part and the log after it",
  opts,
  async () => {
    await using dir = await tempDataDir();
    {
      await using server = await startOn(dir.path);
      using client = new KvClient(server.address);
      // Values of 50-100 KB put one or two entries in each frame (frames close at 64 KiB),
      // so damage in the middle of the file spares the entries before it.
      await client.mset(Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: `${i}`.repeat(50_000) })));
      await client.snapshot();
      await client.set("k29", "written after the snapshot");
      await server.kill();
    }
    const snapshotBytes = (await Deno.stat(join(dir.path, SNAPSHOT_FILE))).size;
    await damageByte(join(dir.path, SNAPSHOT_FILE), Math.floor(snapshotBytes * 0.6));
    assert.match(await startFails(dir.path), /^kvstore: recovery: Cannot load ".*kvstore\.rdb" at offset \d+: /);

    const repair = await runKvstore(["repair", "--data-dir", dir.path]);
    assert.equal(repair.code, 0, repair.stderr);
    assert.match(
      repair.stdout,
      /Fixed: moved .*kvstore\.rdb to .*kvstore\.rdb\.damaged-\S+ and wrote a new one with the \d+ keys/,
    );

    await using server = await startOn(dir.path);
    using client = new KvClient(server.address);
    const values = await client.mget(Array.from({ length: 30 }, (_, i) => `k${i}`));
    assert.equal(values[0], "0".repeat(50_000));
    assert.equal(values[29], "written after the snapshot", "the log after the snapshot is replayed");
    const kept = values.filter((value) => value !== undefined).length;
    assert.ok(kept >= 10 && kept < 30, `${kept} of 30 keys kept`);
  },
);

Deno.test("a missing snapshot that the log continues stops start-up; repair stands in an empty one", opts, async () => {
  await using dir = await tempDataDir();
  {
    await using server = await startOn(dir.path);
    using client = new KvClient(server.address);
    await client.set("before", "snapshot");
    await client.snapshot();
    await client.set("after", "snapshot");
    await server.kill();
  }
  await Deno.remove(join(dir.path, SNAPSHOT_FILE));
  assert.match(await startFails(dir.path), /continues a snapshot at seq 1, and .*kvstore\.rdb is missing/);
  const repair = await runKvstore(["repair", "--data-dir", dir.path]);
  assert.equal(repair.code, 0, repair.stderr);
  await using server = await startOn(dir.path);
  using client = new KvClient(server.address);
  assert.deepEqual(await client.mget(["before", "after"]), [undefined, "snapshot"]);
});

Deno.test("repair refuses a directory that holds no data files, and creates nothing in it", opts, async () => {
  await using dir = await tempDataDir();
  for (const args of [["--check"], []]) {
    const repair = await runKvstore(["repair", "--data-dir", dir.path, ...args]);
    assert.equal(repair.code, 3, repair.stderr);
    assert.match(
      lastLine(repair.stderr),
      /^kvstore repair: Cannot repair ".*": it holds no kvstore\.aof or kvstore\.rdb \(is --data-dir right\?\)$/,
    );
  }
  assert.deepEqual([...Deno.readDirSync(dir.path)], [], "no file was created");
});
