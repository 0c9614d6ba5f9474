import assert from "node:assert/strict";
import { join } from "node:path";
import { createDirectoryDurably } from "./deno_storage.ts";

Deno.test("a new data directory's parents are fsynced top down, so its name survives a power cut", async () => {
  const root = await Deno.makeTempDir({ prefix: "kvstore-dirs-" });
  try {
    const synced: string[] = [];
    const sync = (path: string) => {
      synced.push(path);
      return Promise.resolve();
    };
    const created = await createDirectoryDurably(join(root, "a", "b", "data"), sync);
    assert.deepEqual(created, [join(root, "a"), join(root, "a", "b"), join(root, "a", "b", "data")]);
    assert.deepEqual(synced, [root, join(root, "a"), join(root, "a", "b")]);
    assert.ok((await Deno.stat(join(root, "a", "b", "data"))).isDirectory);

    synced.length = 0;
    assert.deepEqual(await createDirectoryDurably(join(root, "a", "b", "data"), sync), [], "it exists: nothing to do");
    assert.deepEqual(synced, []);
    // The real fsync works on the real directories too.
    await createDirectoryDurably(join(root, "c"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
