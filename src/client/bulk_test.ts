import assert from "node:assert/strict";
import { Batcher, BulkLineError, formatBulkLine, KeysInFlight, parseBulkLine } from "./bulk.ts";
import { LineSplitter, LineTooLongError } from "./lines.ts";

Deno.test("a line holds key, value and ttl in seconds (null or absent: no expiry)", () => {
  assert.deepEqual(parseBulkLine('{"key":"k","value":"v","ttl":null}', 1), {
    kind: "entry",
    entry: { key: "k", value: "v" },
  });
  assert.deepEqual(parseBulkLine('{"key":"k","value":"v"}', 1), { kind: "entry", entry: { key: "k", value: "v" } });
  assert.deepEqual(parseBulkLine('{"key":"k","value":"","ttl":1.5,"extra":true}', 1), {
    kind: "entry",
    entry: { key: "k", value: "", ttlMs: 1500 },
  });
  assert.deepEqual(parseBulkLine('{"key":"k","value":"v","ttl":0}', 1), { kind: "expired" });
  assert.deepEqual(parseBulkLine('{"key":"k","value":"v","ttl":-3}', 1), { kind: "expired" });
  assert.deepEqual(parseBulkLine("   ", 1), { kind: "blank" });
});

Deno.test("bad lines are refused with their number and what is wrong", () => {
  const cases: [string, RegExp][] = [
    ["{nope", /^line 7: not JSON/],
    ["[1,2]", /^line 7: expected an object/],
    ['{"value":"v"}', /^line 7: "key" must be a non-empty string, got nothing/],
    ['{"key":"","value":"v"}', /"key" must be a non-empty string, got ""/],
    ['{"key":"k","value":5}', /^line 7: "value" of key "k" must be a string, got 5/],
    ['{"key":"k","value":"v","ttl":"10"}', /"ttl" of key "k" must be seconds or null, got "10"/],
  ];
  for (const [line, message] of cases) {
    assert.throws(() => parseBulkLine(line, 7), (error: Error) => {
      assert.ok(error instanceof BulkLineError);
      assert.match(error.message, message);
      return true;
    });
  }
});

Deno.test("export lines carry the time left, and skip keys already past their deadline", () => {
  assert.equal(
    formatBulkLine({ key: "k", value: 'v\n"', expiresAtMs: null }, 0),
    '{"key":"k","value":"v\\n\\"","ttl":null}\n',
  );
  assert.equal(
    formatBulkLine({ key: "k", value: "v", expiresAtMs: 12_500 }, 10_000),
    '{"key":"k","value":"v","ttl":2.5}\n',
  );
  assert.equal(formatBulkLine({ key: "k", value: "v", expiresAtMs: 10_000 }, 10_000), undefined);
  const line = formatBulkLine({ key: "ключ", value: "🔑", expiresAtMs: 70_000 }, 10_000)!;
  assert.deepEqual(parseBulkLine(line.trimEnd(), 1), {
    kind: "entry",
    entry: { key: "ключ", value: "🔑", ttlMs: 60_000 },
  });
});

Deno.test("batches close at their entry count or their size, and name their lines", () => {
  const batcher = new Batcher(2, 1000);
  assert.equal(batcher.add({ key: "a", value: "1" }, 1), undefined);
  assert.equal(batcher.add({ key: "b", value: "2", ttlMs: 5 }, 3), undefined);
  const full = batcher.add({ key: "c", value: "3" }, 4)!;
  assert.deepEqual(full, {
    entries: [{ key: "a", value: "1", ttlMs: undefined }, { key: "b", value: "2", ttlMs: 5 }],
    firstLine: 1,
    lastLine: 3,
  });
  assert.deepEqual(batcher.take(), {
    entries: [{ key: "c", value: "3", ttlMs: undefined }],
    firstLine: 4,
    lastLine: 4,
  });
  assert.equal(batcher.take(), undefined);

  const bySize = new Batcher(100, 100);
  assert.equal(bySize.add({ key: "k", value: "x".repeat(20) }, 1), undefined);
  assert.equal(bySize.add({ key: "l", value: "x".repeat(20) }, 2)?.entries.length, 1, "63 + 79 bytes > 100");
  assert.equal(
    new Batcher(100, 10).add({ key: "big", value: "x".repeat(50) }, 1),
    undefined,
    "a large entry goes alone",
  );
});

Deno.test("lines split across chunks, with CRLF and without a final newline", () => {
  const splitter = new LineSplitter(100);
  assert.deepEqual(splitter.push("ab"), []);
  assert.deepEqual(splitter.push("c\r\nde\nf"), ["abc", "de"]);
  assert.deepEqual(splitter.push("g\n\n"), ["fg", ""]);
  assert.equal(splitter.end(), undefined);
  const tail = new LineSplitter(100);
  tail.push("last");
  assert.equal(tail.end(), "last");
});

Deno.test("a line over the bound is refused with its number, before it is held whole", () => {
  const splitter = new LineSplitter(5);
  splitter.push("ok\n");
  assert.throws(() => splitter.push("0123456789"), (error: Error) => {
    assert.ok(error instanceof LineTooLongError);
    assert.equal(error.lineNumber, 2);
    return true;
  });
});

Deno.test("a batch waits only for the calls in flight that write one of its keys", () => {
  const keys = new KeysInFlight<string>();
  const first = [{ key: "a" }, { key: "b" }];
  keys.add(first, "call1");
  keys.add([{ key: "c" }], "call2");
  assert.deepEqual(keys.blockers([{ key: "x" }, { key: "y" }]), new Set(), "no shared key: sent at once");
  assert.deepEqual(keys.blockers([{ key: "b" }, { key: "c" }, { key: "a" }]), new Set(["call1", "call2"]));

  // A later batch with "b" waited for call1, then is in flight itself: "b" is its.
  keys.add([{ key: "b" }], "call3");
  keys.remove(first, "call1");
  assert.deepEqual(keys.blockers([{ key: "a" }, { key: "b" }]), new Set(["call3"]), "b stays call3's");
  keys.remove([{ key: "b" }], "call3");
  keys.remove([{ key: "c" }], "call2");
  assert.equal(keys.size, 0, "nothing is kept once every call is done");
});
