/**
 * What the store keeps after a burst: a million keys with a deadline, all deleted again,
 * must leave next to nothing behind (measured in a process of its own, with garbage
 * collection on demand). Before, the expiring set's array kept its peak's storage (8 MB
 * for a million keys) for good.
 */

import assert from "node:assert/strict";

const SCRIPT = `
import { Store } from ${JSON.stringify(new URL("../src/store/store.ts", import.meta.url).href)};
const gc = globalThis.gc;
gc();
const before = Deno.memoryUsage().heapUsed;
const store = new Store();
for (let i = 0; i < 1_000_000; i++) store.apply({ kind: "set", key: "k" + i, value: "v", expiresAtMs: 1 });
for (let i = 0; i < 1_000_000; i++) store.apply({ kind: "delete", key: "k" + i });
gc();
console.log(JSON.stringify({ bytesLeft: Deno.memoryUsage().heapUsed - before, keys: store.size }));
`;

Deno.test("a million keys with a deadline, once deleted, leave under 1 MiB of the store's memory behind", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", "--ext=ts", "--v8-flags=--expose-gc", SCRIPT],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const { bytesLeft, keys } = JSON.parse(new TextDecoder().decode(output.stdout));
  assert.equal(keys, 0);
  assert.ok(bytesLeft < 1024 * 1024, `${bytesLeft} bytes left behind`);
});
