/**
 * A log torn in its last record, at every byte offset, with real processes: the node
 * starts with every record before it, says in one line what it cut, and later appends
 * land and survive the next restart.
 */

import { plural } from "../src/errors.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { KvClient } from "../src/client/client.ts";
import { inParallel, LOG_FILE, startOn, tempDataDir } from "./helpers/durability.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test(
  "a log torn at any byte of its last record loads the records before it, and appends go on",
  opts,
  async () => {
    await using source = await tempDataDir();
    let sizeBefore: number;
    {
      await using server = await startOn(source.path);
      using client = new KvClient(server.address);
      await client.set("a", "1");
      await client.set("b", "2");
      sizeBefore = Number((await client.info()).log_bytes);
      // The last record is of the smallest kind, a DELETE, so there are fewer restarts.
      await client.delete("b");
      await server.kill();
    }
    const full = await Deno.readFile(join(source.path, LOG_FILE));
    assert.equal(full.length - sizeBefore, 30, "the last record: a 16-byte frame header and a 14-byte DELETE");
    const lengths = Array.from({ length: full.length - sizeBefore - 1 }, (_, i) => sizeBefore + 1 + i);
    // Restarting again after the append is checked at a few cuts: inside the frame header,
    // inside the payload, one byte short.
    const restartAgainAt = new Set([sizeBefore + 3, sizeBefore + 20, full.length - 1]);

    await inParallel(lengths, 4, async (length) => {
      await using dir = await tempDataDir();
      await Deno.writeFile(join(dir.path, LOG_FILE), full.subarray(0, length));
      {
        await using server = await startOn(dir.path);
        using client = new KvClient(server.address);
        assert.deepEqual(await client.mget(["a", "b"]), ["1", "2"], `cut at ${length}: the torn DELETE is dropped`);
        const warnings = server.stderr.split("\n").filter((line) => line.includes("Cut a torn tail"));
        assert.equal(warnings.length, 1, `cut at ${length}: ${server.stderr}`);
        assert.match(
          warnings[0],
          new RegExp(
            `WARN  persistence: Cut a torn tail off .*kvstore\\.aof: ${
              plural(length - sizeBefore, "byte")
            } from offset ` +
              `${sizeBefore} `,
          ),
        );
        await client.set("after", `cut at ${length}`);
        if (!restartAgainAt.has(length)) return;
        await server.kill();
      }
      await using server = await startOn(dir.path);
      using client = new KvClient(server.address);
      assert.deepEqual(await client.mget(["a", "b", "after"]), ["1", "2", `cut at ${length}`]);
      assert.doesNotMatch(server.stderr, /torn/);
    });
  },
);
