import assert from "node:assert/strict";
import { ShellHistory } from "./shell_history.ts";

Deno.test("history keeps typed lines, skipping blanks and immediate repeats", () => {
  const history = new ShellHistory([], 10);
  assert.equal(history.add("get a"), true);
  assert.equal(history.add("get a"), false);
  assert.equal(history.add("   "), false);
  history.add("set a 1");
  history.add("get a");
  assert.deepEqual(history.entries, ["get a", "set a 1", "get a"]);
});

Deno.test("history is bounded: the oldest lines go first", () => {
  const history = new ShellHistory([], 3);
  for (const line of ["1", "2", "3", "4", "5"]) history.add(line);
  assert.deepEqual(history.entries, ["3", "4", "5"]);
});

Deno.test("the file format round-trips and a long file is trimmed to the newest lines", () => {
  const history = new ShellHistory(["a", "b"], 5);
  assert.equal(history.toText(), "a\nb\n");
  assert.deepEqual(ShellHistory.parse("a\r\nb\n\nc\n", 5).entries, ["a", "b", "c"]);
  assert.deepEqual(ShellHistory.parse("1\n2\n3\n4\n", 2).entries, ["3", "4"]);
  assert.deepEqual(ShellHistory.parse("", 2).entries, []);
});
