import assert from "node:assert/strict";
import { quoteWord, ShellSyntaxError, splitWords } from "./shell_words.ts";

Deno.test("words split on spaces; quotes keep spaces; escapes decode as in redis-cli", () => {
  assert.deepEqual(splitWords('  set greeting "hello world"  '), ["set", "greeting", "hello world"]);
  assert.deepEqual(splitWords("set k 'don\\'t'"), ["set", "k", "don't"]);
  assert.deepEqual(splitWords('set k "tab\\there\\x21\\n\\"q\\" \\\\"'), ["set", "k", 'tab\there!\n"q" \\']);
  assert.deepEqual(splitWords("set k 'no \\n escape'"), ["set", "k", "no \\n escape"]);
  assert.deepEqual(splitWords("set k a\\ b"), ["set", "k", "a b"]);
  assert.deepEqual(splitWords('set k ""'), ["set", "k", ""]);
  assert.deepEqual(splitWords("set k ключ🔑"), ["set", "k", "ключ🔑"]);
  assert.deepEqual(splitWords("   "), []);
});

Deno.test("\\xHH escapes are bytes, and a run of them is read as UTF-8", () => {
  assert.deepEqual(splitWords('set k "caf\\xc3\\xa9"'), ["set", "k", "café"]);
  assert.deepEqual(splitWords('set k "\\xf0\\x9f\\x94\\x91 key"'), ["set", "k", "🔑 key"]);
  assert.deepEqual(splitWords('set k "\\x41\\x42"'), ["set", "k", "AB"]);
  assert.deepEqual(splitWords('set k "\\xff"'), ["set", "k", "\ufffd"]);
});

Deno.test("unbalanced quotes and text glued to a closing quote are refused with the column", () => {
  assert.throws(() => splitWords('set k "open'), (error: Error) => {
    assert.ok(error instanceof ShellSyntaxError);
    assert.equal(error.message, "Unterminated double quote at column 7");
    return true;
  });
  assert.throws(() => splitWords("set k 'it''s'"), /A closing quote must be followed by a space at column 11/);
  assert.throws(() => splitWords("get 'x"), /Unterminated single quote at column 5/);
});

Deno.test("quoting a word gives it back through splitting", () => {
  for (const word of ["plain", "", "two words", 'q"uote', "back\\slash", "new\nline", "bell\x07", "it's"]) {
    assert.deepEqual(splitWords(`set ${quoteWord(word)}`), ["set", word], JSON.stringify(word));
  }
  assert.equal(quoteWord("plain"), "plain");
});
