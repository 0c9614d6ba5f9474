/**
 * Replication on a disk that cannot take what it is given, with real processes: a replica
 * whose files cannot hold a fullSync must not carry on as if they did.
 *
 * The disk is made full with a file size limit on the node (`ulimit -f`, with SIGXFSZ
 * ignored so that writes past it fail with EFBIG), as tests/persistence_disk_full_test.ts
 * does.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { countLog, startMaster, waitForConvergence } from "./helpers/replication.ts";
import { kvstoreCommand, ServerProcess } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Starts a replica of `masterAddress` whose files may grow to `blocks` 512-byte blocks
 * (as dash counts them). Snapshots are off, so only the fullSync writes a snapshot. */
async function startLimitedReplica(masterAddress: string, blocks: number): Promise<ServerProcess> {
  const dataDir = await Deno.makeTempDir({ prefix: "kvstore-test-" });
  const { command, args } = kvstoreCommand([
    "--replica",
    "--master-address",
    masterAddress,
    "--address",
    "127.0.0.1:0",
    "--data-dir",
    dataDir,
    "--snapshot-interval-seconds",
    "0",
  ]);
  const child = new Deno.Command("sh", {
    args: ["-c", `trap '' XFSZ; ulimit -f ${blocks}; exec "$@"`, "sh", command, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const server = new ServerProcess(child, dataDir, true);
  const match = await server.waitForLog(/Listening on (\S+:\d+)/);
  server.address = match[1];
  return server;
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

    // Once the dataset fits, the next fullSync succeeds, and the writes after it apply.
    for (let i = 0; i < 36; i++) await client.delete(`big:${i}`);
    await client.set("after", "fits");
    await waitForConvergence(master, [replica]);
    assert.ok(countLog(replica, /Full sync from master started/) >= 2, "the fullSync was retried");
    assert.doesNotMatch(replica.stderr, /Cannot append seq/, "the replica never logged past what its files hold");
  },
);
