import assert from "node:assert/strict";
import { formatInfo } from "./info.ts";

Deno.test("info prints plain fields aligned, then each list with one record per line", () => {
  const lines = formatInfo({
    replicas: [
      { replica_id: "r1", address: "10.0.0.2:50052", acked_seq: "7", lag_ms: "0" },
      { replica_id: "r2", address: "10.0.0.3:50053", acked_seq: "5", lag_ms: "12" },
    ],
    role: "master",
    last_seq: "7",
  });
  assert.deepEqual(lines, [
    "role         master",
    "last_seq     7",
    "replicas     2",
    "replicas[0]  replica_id=r1 address=10.0.0.2:50052 acked_seq=7 lag_ms=0",
    "replicas[1]  replica_id=r2 address=10.0.0.3:50053 acked_seq=5 lag_ms=12",
  ]);
});

Deno.test("an empty list says so", () => {
  assert.deepEqual(formatInfo({ role: "replica", replicas: [] }), ["role      replica", "replicas  (none)"]);
});
