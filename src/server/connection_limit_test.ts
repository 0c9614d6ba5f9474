import assert from "node:assert/strict";
import { FDS_RESERVED, ROUTER_LINK_FDS_RESERVED } from "../config/limits.ts";
import { connectionsLimit, parseOpenFilesLimit } from "./connection_limit.ts";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

Deno.test("the open-file limit is read from /proc/PID/limits", () => {
  assert.equal(parseOpenFilesLimit(LIMITS), 1024);
  assert.equal(parseOpenFilesLimit(LIMITS.replace("1024 ", "unlimited ")), null);
  assert.equal(parseOpenFilesLimit("nothing here"), null);
});

Deno.test("the connection limit stays FDS_RESERVED below the open-file limit", () => {
  assert.deepEqual(connectionsLimit(10_000, 524_288), { connectionsMax: 10_000, loweredBy: null });
  assert.deepEqual(connectionsLimit(10_000, null), { connectionsMax: 10_000, loweredBy: null });
  assert.deepEqual(connectionsLimit(10_000, 1024), { connectionsMax: 1024 - FDS_RESERVED, loweredBy: 1024 });
  assert.deepEqual(connectionsLimit(1024 - FDS_RESERVED, 1024), {
    connectionsMax: 1024 - FDS_RESERVED,
    loweredBy: null,
  });
  assert.deepEqual(connectionsLimit(100, 64), { connectionsMax: 1, loweredBy: 64 }, "at least one");
  assert.deepEqual(
    connectionsLimit(10_000, 1024, FDS_RESERVED + ROUTER_LINK_FDS_RESERVED),
    { connectionsMax: 256, loweredBy: 1024 },
    "a router keeps more for its links to the shards",
  );
});
