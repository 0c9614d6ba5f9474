/**
 * Replication on a disk that cannot take what it is given, with real processes: a replica
 * whose files cannot hold a fullSync must not carry on as if they did, and one whose log
 * cannot record a new history must not become a master.
 *
 * The disk is made full with a file size limit on the node (`ulimit -f`, with SIGXFSZ
 * ignored so that writes past it fail with EFBIG), as tests/persistence_disk_full_test.ts
 * does.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { KvClient } from "../src/client/client.ts";
import { countLog, info, startMaster, waitForConvergence } from "./helpers/replication.ts";
import { fileSizeLimit, runKvstore, type ServerProcess, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Starts a replica of `masterAddress` whose files may grow to `blocks` 512-byte blocks
 * (as dash counts them). Snapshots are off, so only the fullSync writes a snapshot. */
function startLimitedReplica(masterAddress: string, blocks: number): Promise<ServerProcess> {
  return startServer({
    args: ["--replica", "--master-address", masterAddress, "--snapshot-interval-seconds", "0"],
    shellSetup: fileSizeLimit(blocks),
  });
}

Deno.test(
  "a replica whose files cannot take a fullSync retries it, and converges once they can",
  opts,
  async () => {
    await using master = await startMaster();
    using client = new KvClient(master.address);
    const value = "x".repeat(4096);
    await client.mset(Array.from({ length: 40 }, (_, i) => ({ key: `big:${i}`, value })));

    // 160 KiB of data against files limited to 64 KiB: the fullSync loads, but the
    // snapshot that would make the replica's files hold it cannot be written.
    await using replica = await startLimitedReplica(master.address, 128);
    await replica.waitForLog(/Link to master down: persistence: Cannot replace the data files/);

    // Its files do not hold what it serves: promoted now, it would restart as something
    // else than what it took writes on.
    const promote = await runKvstore(["promote", "--endpoint", replica.address]);
    assert.equal(promote.code, 3, promote.stdout);
    assert.match(
      promote.stderr,
      /FAILED_PRECONDITION: replication: Cannot promote: its files do not hold the dataset it serves/,
    );
    assert.equal((await info(replica.address)).role, "replica");

    // Once the dataset fits, the next fullSync succeeds, and the writes after it apply.
    for (let i = 0; i < 36; i++) await client.delete(`big:${i}`);
    await client.set("after", "fits");
    await waitForConvergence(master, [replica]);
    assert.ok(countLog(replica, /Full sync from master started/) >= 2, "the fullSync was retried");
    assert.doesNotMatch(replica.stderr, /Cannot append seq/, "the replica never logged past what its files hold");
  },
);

Deno.test("a replica whose log cannot record a new history stays a replica when promoted", opts, async () => {
  await using master = await startMaster();
  using client = new KvClient(master.address);
  const blocks = 512;
  await using replica = await startLimitedReplica(master.address, blocks);
  await waitForConvergence(master, [replica]);
  const logPath = join(replica.dataDir, "kvstore.aof");
  const logBytes = async () => (await Deno.stat(logPath)).size;

  // Fill the replica's log to a few bytes short of its limit, too few for the record of
  // a new history: one write measures what a write of the key costs, a second one of the
  // right size fills the rest. (Both values' lengths take 3 bytes in the record.)
  const probeLength = 20_000;
  const emptyBytes = await logBytes();
  await client.set("fill", "p".repeat(probeLength));
  await waitForConvergence(master, [replica]);
  const probedBytes = await logBytes();
  const roomBytes = 8;
  const fillLength = blocks * 512 - roomBytes - probedBytes - (probedBytes - emptyBytes) + probeLength;
  await client.set("fill", "f".repeat(fillLength));
  await waitForConvergence(master, [replica]);
  assert.equal(await logBytes(), blocks * 512 - roomBytes);

  const promote = await runKvstore(["promote", "--endpoint", replica.address]);
  assert.equal(promote.code, 3, promote.stdout);
  assert.match(promote.stderr, /UNAVAILABLE: replication: Cannot promote: log: Cannot append the new history/);
  assert.match(promote.stderr, new RegExp(`still a replica of ${master.address}`));
  const after = await info(replica.address);
  assert.equal(after.role, "replica");
  assert.equal(after.master_address, master.address);
  await waitUntil(async () => (await info(replica.address)).link_state === "up", "it follows its master again");
  await waitForConvergence(master, [replica]);
  using reader = new KvClient(replica.address);
  await assert.rejects(reader.set("k", "v"), /FAILED_PRECONDITION/, "it takes no writes");
});
