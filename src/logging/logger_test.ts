import assert from "node:assert/strict";
import { Logger } from "./logger.ts";

function capture(format: "text" | "json", level: "debug" | "info" = "info") {
  const lines: string[] = [];
  const logger = new Logger({ level, format, sink: (line) => lines.push(line), clock: () => 0 });
  return { logger, lines };
}

Deno.test("text lines read: time, level, component, message, details", () => {
  const { logger, lines } = capture("text");
  logger.child("server").info("Listening on 127.0.0.1:1", { role: "master", note: "two words" });
  assert.deepEqual(lines, [
    '1970-01-01T00:00:00.000Z INFO  server: Listening on 127.0.0.1:1 role=master note="two words"',
  ]);
});

Deno.test("json lines carry the same fields", () => {
  const { logger, lines } = capture("json");
  logger.warn("Disk slow", { fsyncMs: 120 });
  assert.deepEqual(JSON.parse(lines[0]), {
    ts: "1970-01-01T00:00:00.000Z",
    level: "warn",
    component: "kvstore",
    msg: "Disk slow",
    fsyncMs: 120,
  });
});

Deno.test("lines below the level are dropped", () => {
  const { logger, lines } = capture("text", "info");
  logger.debug("hidden");
  logger.error("shown");
  assert.equal(lines.length, 1);
  assert.ok(lines[0].includes("ERROR"));
});

Deno.test("a line break in a message does not start a new text line", () => {
  const { logger, lines } = capture("text");
  logger.warn("first\nsecond\r\nthird", { key: "a\nb" });
  assert.deepEqual(lines, ['1970-01-01T00:00:00.000Z WARN  kvstore: first\\nsecond\\nthird key="a\\nb"']);
});

Deno.test("control characters a client sent reach no terminal: they are written as escapes", () => {
  const { logger, lines } = capture("text");
  logger.info("Replica a\u001b[31mred\rback\u009b2J\u0007", { replica: "x\u001b]0;title\u0007", plain: "ok\u007f" });
  assert.deepEqual(lines, [
    "1970-01-01T00:00:00.000Z INFO  kvstore: Replica a\\u001b[31mred\\u000dback\\u009b2J\\u0007 " +
    'replica="x\\u001b]0;title\\u0007" plain="ok\\u007f"',
  ]);
  assert.doesNotMatch(lines[0], /\p{Cc}/u);
});

Deno.test("a detail cannot replace a JSON line's own keys", () => {
  const { logger, lines } = capture("json");
  logger.error("Real message", { msg: "detail", level: "debug", ts: 1 });
  assert.deepEqual(JSON.parse(lines[0]), {
    ts: "1970-01-01T00:00:00.000Z",
    level: "error",
    component: "kvstore",
    msg: "Real message",
    _msg: "detail",
    _level: "debug",
    _ts: 1,
  });
});
