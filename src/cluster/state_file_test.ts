import assert from "node:assert/strict";
import { completeMigration, initialMembership, startAdd, startRemove } from "./membership.ts";
import { parseShardList, parseShardSpec } from "./shard_spec.ts";
import { decodeState, encodeState } from "./state_file.ts";

const base = initialMembership(parseShardList("127.0.0.1:7001,b=127.0.0.1:7002+127.0.0.1:7102", "t"), 512);

Deno.test("the state file reads back every membership it writes: stable, adding, removing", () => {
  const adding = startAdd(base, parseShardSpec("127.0.0.1:7003", "t"), 1_764_083_400_000);
  const removing = startRemove(completeMigration(adding), "b", 1_764_083_500_000);
  for (const membership of [base, adding, removing, completeMigration(removing)]) {
    assert.deepEqual(decodeState(encodeState(membership), "f"), membership);
  }
  const text = encodeState(adding);
  assert.ok(text.endsWith("}\n"));
  assert.match(text, /"format": "kvstore-cluster"/);
});

Deno.test("a state file that cannot be trusted is refused with the file and the field named", () => {
  const good = JSON.parse(encodeState(base));
  const cases: [unknown, RegExp][] = [
    ["{not json", /f: it is not valid JSON/],
    [{ ...good, format: "other" }, /"format" is "other"/],
    [{ ...good, version: 2 }, /"version" 2 is not one this build reads/],
    [{ ...good, epoch: 0 }, /"epoch" must be a positive integer/],
    [{ ...good, vnodes: 0 }, /"vnodes" must be an integer/],
    [{ ...good, shards: [] }, /"shards" must be a non-empty list/],
    [{ ...good, shards: [{ name: "a", master: "nohost" }] }, /"shards"\[0\] needs/],
    [{ ...good, shards: [{ name: "a", master: "nohost", replicas: [] }] }, /expected host:port/],
    [{ ...good, shards: [good.shards[0], good.shards[0]] }, /listed twice/],
    [{ ...good, migration: { kind: "grow", shard: good.shards[0], startedAtMs: 1 } }, /"migration.kind"/],
    [{ ...good, migration: { kind: "add", shard: good.shards[0], startedAtMs: 1 } }, /already in "shards"/],
    [
      { ...good, migration: { kind: "remove", shard: { ...good.shards[0], name: "zz" }, startedAtMs: 1 } },
      /not in "shards"/,
    ],
  ];
  for (const [document, message] of cases) {
    const text = typeof document === "string" ? document : JSON.stringify(document);
    assert.throws(() => decodeState(text, "f"), message);
  }
});
