/**
 * The replication backlog holds what --backlog-bytes says: bench/backlog_memory.ts
 * measures, in a process of its own with garbage collection on demand, what each kind
 * of command costs in the heap, and none may cost more than it is charged.
 */

import assert from "node:assert/strict";
import type { KindCost } from "../bench/backlog_memory.ts";

Deno.test("no kind of command costs the backlog more memory than it is charged against --backlog-bytes", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--v8-flags=--expose-gc",
      new URL("../bench/backlog_memory.ts", import.meta.url).pathname,
      "--json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  const costs = JSON.parse(new TextDecoder().decode(output.stdout)) as KindCost[];
  assert.equal(costs.length, 5);
  for (const { kind, realBytes, chargedBytes } of costs) {
    assert.ok(realBytes <= chargedBytes, `${kind}: ${realBytes} bytes per entry in the heap, charged ${chargedBytes}`);
  }
});
