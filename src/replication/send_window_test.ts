import assert from "node:assert/strict";
import { SendWindow } from "./send_window.ts";

Deno.test("a window has room until the bytes not yet handled reach its bound", () => {
  const window = new SendWindow(1000);
  assert.equal(window.hasRoom, true);
  window.sent(400);
  window.sent(500);
  assert.equal(window.hasRoom, true, "900 bytes outstanding, under 1000");
  window.sent(200);
  assert.equal(window.hasRoom, false, "1100 bytes outstanding");
  assert.equal(window.outstandingMessages, 3);
  assert.equal(window.handled(1), true);
  assert.equal(window.outstandingBytes, 700);
  assert.equal(window.hasRoom, true);
});

Deno.test("one message may always be outstanding, however large", () => {
  const window = new SendWindow(100);
  window.sent(5000);
  assert.equal(window.hasRoom, false);
  window.handled(1);
  assert.equal(window.hasRoom, true);
  assert.equal(window.outstandingBytes, 0);
});

Deno.test("reports that go back change nothing, and reports beyond what was sent are held to it", () => {
  const window = new SendWindow(1000);
  for (let i = 0; i < 5; i++) window.sent(100);
  assert.equal(window.handled(3), true);
  assert.equal(window.handled(2), false);
  assert.equal(window.outstandingMessages, 2);
  assert.equal(window.handled(99), true);
  assert.equal(window.outstandingMessages, 0);
  assert.equal(window.outstandingBytes, 0);
  window.sent(10);
  assert.equal(window.outstandingMessages, 1, "the count resumes from what was sent");
});

Deno.test("the window stays exact across compaction of handled messages", () => {
  const window = new SendWindow(1_000_000);
  let handled = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 100; i++) window.sent(i + 1);
    handled += 90;
    window.handled(handled);
  }
  // 500 remain outstanding; their bytes, computed the slow way:
  const sizes = Array.from({ length: 50 }, () => Array.from({ length: 100 }, (_, i) => i + 1)).flat();
  const expected = sizes.slice(handled).reduce((a, b) => a + b, 0);
  assert.equal(window.outstandingMessages, 500);
  assert.equal(window.outstandingBytes, expected);
});
