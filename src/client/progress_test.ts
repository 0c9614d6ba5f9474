import assert from "node:assert/strict";
import { formatProgressBar, formatProgressLine, Progress } from "./progress.ts";

Deno.test("the bar shows the share done, the count and the rate", () => {
  assert.equal(
    formatProgressBar("import", "keys", { done: 50, fraction: 0.5, rate: 1234.4 }, 100),
    "import [###############...............]  50%  50/100 keys  1234 keys/s",
  );
  assert.equal(formatProgressBar("import", "keys", { done: 7, rate: 3 }), "import 7 keys  3 keys/s");
  assert.equal(
    formatProgressLine("export", "keys", { done: 10, fraction: 0.25, rate: 5 }),
    "kvstore export: 10 keys, 25%, 5 keys/s",
  );
});

Deno.test("on a terminal the bar is redrawn in place at most every 100 ms, and cleared at the end", () => {
  let nowMs = 0;
  const written: string[] = [];
  const progress = new Progress((text) => written.push(text), {
    terminal: true,
    label: "import",
    unit: "keys",
    clock: () => nowMs,
  });
  progress.update(1);
  nowMs = 50;
  progress.update(2);
  assert.equal(written.length, 0);
  nowMs = 150;
  progress.update(3, 0.5);
  assert.equal(written.length, 1);
  assert.ok(written[0].startsWith("\r\x1b[2Kimport ["));
  progress.finish();
  assert.equal(written[1], "\r\x1b[2K");
});

Deno.test("off a terminal it writes a plain line every 2 s, and nothing to clear", () => {
  let nowMs = 0;
  const written: string[] = [];
  const progress = new Progress((text) => written.push(text), {
    terminal: false,
    label: "export",
    unit: "keys",
    total: 100,
    clock: () => nowMs,
  });
  nowMs = 1000;
  progress.update(10);
  nowMs = 2000;
  progress.update(20);
  nowMs = 3000;
  progress.update(30);
  progress.finish();
  assert.deepEqual(written, ["kvstore export: 20 keys, 20%, 10 keys/s\n"]);
});
