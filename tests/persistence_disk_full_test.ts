/**
 * A disk that cannot take the log's appends, with real processes: the writes that hit it
 * fail with UNAVAILABLE and a message saying why, nothing of them is applied or left in
 * the log, reads go on, and writes succeed again once the disk does.
 *
 * Two ways to fill a disk from a test: a file size limit on the node (`ulimit -f`, with
 * SIGXFSZ ignored so that writes past it fail with EFBIG instead of killing the process),
 * which works anywhere; and a small tmpfs filled to the brim (ENOSPC), which needs the
 * privilege to mount and is skipped without it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { KvClient, KvClientError } from "../src/client/client.ts";
import { digestOf, fileSize, LOG_FILE, startOn, tempDataDir } from "./helpers/durability.ts";
import { fileSizeLimit, type ServerProcess, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Sets `key` to ever new 10 KiB values until a write fails; returns the last value
 * acknowledged and the failure. Bounded: the disk must be full within `writesMax`. */
async function writeUntilFull(client: KvClient, key: string, writesMax: number) {
  let acked: string | undefined;
  for (let i = 0; i < writesMax; i++) {
    const value = `${i}:`.padEnd(10 * 1024, "x");
    try {
      await client.set(key, value);
      acked = value;
    } catch (error) {
      assert.ok(error instanceof KvClientError, String(error));
      return { acked, failure: error };
    }
  }
  throw new Error(`${writesMax} writes of 10 KiB all succeeded: the disk never filled`);
}

/** Starts kvstore with its files capped at `blocks` 512-byte blocks. */
function startWithFileSizeLimit(dataDir: string, blocks: number): Promise<ServerProcess> {
  return startServer({ dataDir, args: ["--snapshot-interval-seconds", "0"], shellSetup: fileSizeLimit(blocks) });
}

Deno.test(
  "smoke: appends past a file size limit fail cleanly, reads go on, and writes resume once the log is cut",
  opts,
  async () => {
    await using dir = await tempDataDir();
    const logPath = join(dir.path, LOG_FILE);
    let digest;
    {
      await using server = await startWithFileSizeLimit(dir.path, 512);
      using client = new KvClient(server.address);
      await client.set("keep", "safe");
      const { acked, failure } = await writeUntilFull(client, "big", 200);
      assert.equal(failure.codeName, "UNAVAILABLE");
      assert.match(
        failure.details,
        /^log: Cannot append 1 write to .*kvstore\.aof: File too large \(os error 27\)\. Nothing was applied; reads go on/,
      );
      assert.equal(await client.get("big"), acked, "the failed write is not visible");
      assert.equal(await client.get("keep"), "safe");
      const info = await client.info();
      assert.match(info.log_error ?? "", /File too large/);
      assert.equal(await fileSize(logPath), Number(info.log_bytes), "no part of the failed batch is left in the log");
      assert.ok(server.running, "the node keeps running");

      // The snapshot holds two keys; cutting the log makes room again.
      await client.snapshot();
      await client.set("big", "after the cut");
      assert.equal((await client.info()).log_error, "");
      digest = await digestOf(server.address);
      await server.kill();
    }
    await using server = await startOn(dir.path);
    using client = new KvClient(server.address);
    assert.deepEqual(await client.mget(["keep", "big"]), ["safe", "after the cut"]);
    assert.deepEqual(await digestOf(server.address), digest);
  },
);

/** Whether this process may mount a tmpfs (root, or the capability). */
function canMountTmpfs(): boolean {
  let dir: string | undefined;
  try {
    dir = Deno.makeTempDirSync({ prefix: "kvstore-mount-probe-" });
    const mounted = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
    if (mounted) new Deno.Command("umount", { args: [dir], stdout: "null", stderr: "null" }).outputSync();
    return mounted;
  } catch {
    return false;
  } finally {
    if (dir !== undefined) Deno.removeSync(dir, { recursive: true });
  }
}

/** Fills the file system holding `path` with one file until it is full; returns it. */
async function fillDisk(path: string): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(16 * 1024);
  try {
    while (true) await file.write(chunk);
  } catch (error) {
    assert.match(String(error), /No space left on device/);
  }
}

Deno.test({
  name: "a full disk (tmpfs) fails writes with ENOSPC; freeing space lets them succeed again",
  ...opts,
  ignore: !canMountTmpfs(),
  async fn() {
    await using mountPoint = await tempDataDir();
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint.path],
    }).output();
    assert.ok(mount.success, new TextDecoder().decode(mount.stderr));
    try {
      const dataDir = join(mountPoint.path, "data");
      const filler = join(mountPoint.path, "filler");
      let digest;
      {
        await using server = await startOn(dataDir, { args: ["--appendfsync", "always"] });
        using client = new KvClient(server.address);
        await client.set("keep", "safe");
        await fillDisk(filler);
        const { failure } = await writeUntilFull(client, "big", 50);
        assert.equal(failure.codeName, "UNAVAILABLE");
        assert.match(failure.details, /^log: Cannot append 1 write to .*: No space left on device \(os error 28\)/);
        assert.equal(await client.get("keep"), "safe", "reads go on");
        assert.equal(await fileSize(join(dataDir, LOG_FILE)), Number((await client.info()).log_bytes));

        await Deno.remove(filler);
        await client.set("big", "room again");
        assert.equal((await client.info()).log_error, "");
        digest = await digestOf(server.address);
        await server.kill();
      }
      await using server = await startOn(dataDir);
      using client = new KvClient(server.address);
      assert.equal(await client.get("big"), "room again");
      assert.deepEqual(await digestOf(server.address), digest);
      await server.kill();
    } finally {
      await new Deno.Command("umount", { args: ["-l", mountPoint.path] }).output();
    }
  },
});
