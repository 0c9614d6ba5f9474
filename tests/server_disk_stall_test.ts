/**
 * A graceful shutdown over a stalled disk: every wait on the disk is bounded by
 * --shutdown-disk-wait-ms, so a node whose fsync hangs still exits (status 1, saying what
 * it gave up) rather than waiting for a second signal; the next start recovers its files.
 *
 * The stall is real: strace holds every fsync and fdatasync of the node at their entry
 * (`-e inject=...:delay_enter`), as a disk that stopped answering would. Linux only, and
 * skipped where strace is not installed or may not attach to another process.
 *
 * @module
 */

import assert from "node:assert/strict";
import { KvClient, KvClientError } from "../src/client/client.ts";
import { startMaster, startReplica } from "./helpers/replication.ts";
import { type ServerProcess, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const STRACE = ["/usr/bin/strace", "/bin/strace"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

/** Whether strace can attach to a process it did not start, as the tests do to a node
 * (ptrace may be denied: no CAP_SYS_PTRACE in a container, Yama's ptrace_scope); the
 * tests are skipped where it cannot. */
async function straceCanAttach(): Promise<boolean> {
  if (STRACE === undefined) return false;
  const target = new Deno.Command("sleep", { args: ["10"], stdout: "null", stderr: "null" }).spawn();
  const strace = new Deno.Command(STRACE, {
    args: ["-qq", "-e", "trace=none", "-o", "/dev/null", "-p", String(target.pid)],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (tracedBy([target.pid], strace.pid)) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
  } catch {
    return false;
  } finally {
    for (const child of [strace, target]) {
      try {
        child.kill("SIGKILL");
      } catch { /* exited: it could not attach */ }
      await child.status;
    }
  }
}

const CAN_STALL = await straceCanAttach().catch(() => false);

/** The bound the nodes here are given: short, so the tests are. */
const DISK_WAIT_MS = 500;

/** The pids of `pid` and of every process under it (a wrapper script's node). */
function processTree(pid: number): number[] {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    for (const task of Deno.readDirSync(`/proc/${pids[i]}/task`)) {
      const children = Deno.readTextFileSync(`/proc/${pids[i]}/task/${task.name}/children`).trim();
      if (children !== "") pids.push(...children.split(/\s+/).map(Number));
    }
  }
  return pids;
}

/** Every thread of `pids` is traced by `tracer`. */
function tracedBy(pids: readonly number[], tracer: number): boolean {
  return pids.every((pid) =>
    [...Deno.readDirSync(`/proc/${pid}/task`)].every((task) =>
      Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/status`).includes(`TracerPid:\t${tracer}\n`)
    )
  );
}

/** Makes every fsync of `server` hang (for an hour) until the result is disposed, which
 * kills strace and lets them go. `fsyncsHeld` reads how many fsyncs are being held. */
async function stallDisk(server: ServerProcess) {
  const out = await Deno.makeTempFile({ prefix: "kvstore-strace-" });
  const pids = processTree(server.pid);
  const strace = new Deno.Command(STRACE!, {
    args: [
      "-f",
      "-qq",
      "-e",
      "signal=none",
      "-e",
      "trace=fsync,fdatasync",
      "-e",
      "inject=fsync,fdatasync:delay_enter=3600s",
      "-o",
      out,
      ...pids.flatMap((pid) => ["-p", String(pid)]),
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitUntil(() => tracedBy(pids, strace.pid), "strace holds every thread of the node", 10_000);
  return {
    /** fsyncs that entered the kernel and are held there (strace writes a call's start
     * when it enters). */
    fsyncsHeld: () => (Deno.readTextFileSync(out).match(/\b(fsync|fdatasync)\(/g) ?? []).length,
    async [Symbol.asyncDispose]() {
      try {
        strace.kill("SIGKILL");
      } catch { /* gone */ }
      await strace.status;
      await Deno.remove(out).catch(() => {});
    },
  };
}

Deno.test({
  name: "a shutdown whose writes never reach the disk gives them up at its bound and exits 1; the files recover",
  ignore: !CAN_STALL,
  ...opts,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "kvstore-stall-" });
    try {
      const args = ["--appendfsync", "always", "--shutdown-disk-wait-ms", String(DISK_WAIT_MS)];
      {
        await using server = await startServer({ dataDir, args });
        using client = new KvClient(server.address, { deadlineMs: 30_000 });
        await client.set("acked", "1");
        await using disk = await stallDisk(server);
        // Under --appendfsync always the write waits for its fsync, which hangs.
        const write = client.set("pending", "2").then(() => null, (error: unknown) => error);
        await waitUntil(() => disk.fsyncsHeld() > 0, "the write's fsync hangs");
        const stoppedAtMs = performance.now();
        server.signal("SIGTERM");
        await server.waitForLog(/Stopped without closing the log cleanly/, 10_000);
        const stopMs = performance.now() - stoppedAtMs;

        const error = await write;
        assert.ok(error instanceof KvClientError, String(error));
        assert.equal(error.codeName, "UNAVAILABLE");
        assert.match(error.details, /^server: The node shut down before the disk took this write .*may or may not/);
        assert.equal(error.outcomeUnknown, true, "the client library hears that the write may have been applied");
        assert.match(
          server.stderr,
          new RegExp(
            `ERROR server: Shutting down with 1 write still waiting for the disk after ${DISK_WAIT_MS} ms: ` +
              "they were not acknowledged",
          ),
        );
        assert.doesNotMatch(server.stderr, /Snapshot written/, "no snapshot over a log whose end is unknown");
        // The bound, and the grace for calls in flight (none: the write was answered).
        assert.ok(stopMs < DISK_WAIT_MS + 5000, `stopped after ${stopMs} ms`);
        await disk[Symbol.asyncDispose]();
        assert.equal((await server.exited).code, 1, "the files were not closed cleanly");
      }
      // The files are as a crash leaves them; the acknowledged write is there.
      await using again = await startServer({ dataDir, args });
      using client = new KvClient(again.address);
      assert.equal(await client.get("acked"), "1");
      assert.ok(["2", undefined].includes(await client.get("pending")), "the given-up write is there or not");
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a shutdown whose snapshot and last fsync hang gives each up at its bound and exits 1; nothing acked is lost",
  ignore: !CAN_STALL,
  ...opts,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "kvstore-stall-" });
    try {
      // everysec: a write is acknowledged once the OS has it; the fsyncs come later.
      const args = ["--appendfsync", "everysec", "--shutdown-disk-wait-ms", String(DISK_WAIT_MS)];
      {
        await using server = await startServer({ dataDir, args });
        using client = new KvClient(server.address, { deadlineMs: 30_000 });
        await using disk = await stallDisk(server);
        await client.mset(Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
        await waitUntil(() => disk.fsyncsHeld() > 0, "the everysec fsync hangs");
        const stoppedAtMs = performance.now();
        server.signal("SIGTERM");
        await server.waitForLog(/Stopped without closing the log cleanly/, 10_000);
        const stopMs = performance.now() - stoppedAtMs;
        assert.match(
          server.stderr,
          new RegExp(`WARN  server: The snapshot did not finish within ${DISK_WAIT_MS} ms .*it is abandoned`),
        );
        assert.match(
          server.stderr,
          new RegExp(
            `ERROR server: Could not sync and close the log within ${DISK_WAIT_MS} ms: the disk does not answer`,
          ),
        );
        assert.ok(stopMs < 2 * DISK_WAIT_MS + 5000, `stopped after ${stopMs} ms`);
        await disk[Symbol.asyncDispose]();
        assert.equal((await server.exited).code, 1);
      }
      await using again = await startServer({ dataDir, args });
      using client = new KvClient(again.address);
      const values = await client.mget(Array.from({ length: 100 }, (_, i) => `k${i}`));
      assert.deepEqual(values, Array.from({ length: 100 }, (_, i) => `v${i}`), "every acknowledged write is back");
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a replica whose fullSync waits for a stalled disk still shuts down at its bound, and exits 1",
  ignore: !CAN_STALL,
  ...opts,
  fn: async () => {
    const master = await startMaster();
    const masterAddress = master.address;
    try {
      await using replica = await startReplica(master, ["--shutdown-disk-wait-ms", String(DISK_WAIT_MS)]);
      await replica.waitForLog(/Link to master up/);
      await using disk = await stallDisk(replica);
      // A master with another history at the same address: the replica's fullSync replaces
      // its data files, and the fsync of the new snapshot hangs.
      await master[Symbol.asyncDispose]();
      await using other = await startMaster([], { address: masterAddress });
      void other;
      await replica.waitForLog(/Full sync from master started/);
      await waitUntil(() => disk.fsyncsHeld() > 0, "the fullSync's fsync hangs");
      const stoppedAtMs = performance.now();
      replica.signal("SIGTERM");
      await replica.waitForLog(/Stopped without closing the log cleanly/, 10_000);
      const stopMs = performance.now() - stoppedAtMs;
      assert.match(
        replica.stderr,
        new RegExp(`ERROR server: Replication did not stop within ${DISK_WAIT_MS} ms .*a sync from the master waits`),
      );
      assert.ok(stopMs < DISK_WAIT_MS + 5000, `stopped after ${stopMs} ms`);
      await disk[Symbol.asyncDispose]();
      assert.equal((await replica.exited).code, 1);
    } finally {
      await master[Symbol.asyncDispose]();
    }
  },
});
