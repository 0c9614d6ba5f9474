import assert from "node:assert/strict";
import { join } from "node:path";
import { createDirectoryDurably, lockDataDir } from "./deno_storage.ts";

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

Deno.test("a data directory locked by another holder is refused in the words of the caller's subsystem", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-lock-" });
  try {
    const held = await lockDataDir(dir, "server");
    try {
      for (const subsystem of ["router", "repair"]) {
        const refusal = await lockDataDir(dir, subsystem).then(() => null, (error: Error) => error);
        assert.match(
          refusal?.message ?? "",
          new RegExp(
            `^${subsystem}: Cannot use data directory ".*": another kvstore process \\(pid ${Deno.pid}\\) is using it`,
          ),
        );
      }
    } finally {
      held.close();
    }
    (await lockDataDir(dir, "router")).close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
