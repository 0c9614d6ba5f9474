import assert from "node:assert/strict";
import { KvError } from "../errors.ts";
import { validateKey, validateTtlSeconds, validateValue } from "./validation.ts";

const LIMITS = { keyBytesMax: 8, valueBytesMax: 16, ttlSecondsMax: 100 };

function codeOf(action: () => void): string | undefined {
  try {
    action();
    return undefined;
  } catch (error) {
    assert.ok(error instanceof KvError);
    return error.code;
  }
}

Deno.test("an empty key is an invalid argument", () => {
  assert.equal(codeOf(() => validateKey("", "get", LIMITS)), "INVALID_ARGUMENT");
});

Deno.test("key length counts UTF-8 bytes, not characters", () => {
  assert.equal(codeOf(() => validateKey("12345678", "get", LIMITS)), undefined);
  assert.equal(codeOf(() => validateKey("€€€", "get", LIMITS)), "INVALID_ARGUMENT");
});

Deno.test("an oversized value is RESOURCE_EXHAUSTED and the message names the flag", () => {
  assert.equal(codeOf(() => validateValue("k", "x".repeat(16), LIMITS)), undefined);
  assert.throws(() => validateValue("k", "x".repeat(17), LIMITS), /17 bytes, over the limit of 16 .*--max-value-bytes/);
  assert.equal(codeOf(() => validateValue("k", "x".repeat(17), LIMITS)), "RESOURCE_EXHAUSTED");
});

Deno.test("TTLs: zero and negative are allowed (they delete); over the maximum is refused", () => {
  assert.equal(codeOf(() => validateTtlSeconds("k", 0, LIMITS)), undefined);
  assert.equal(codeOf(() => validateTtlSeconds("k", -2147483648, LIMITS)), undefined);
  assert.equal(codeOf(() => validateTtlSeconds("k", 100, LIMITS)), undefined);
  assert.equal(codeOf(() => validateTtlSeconds("k", 101, LIMITS)), "INVALID_ARGUMENT");
  assert.equal(codeOf(() => validateTtlSeconds("k", 1.5, LIMITS)), "INVALID_ARGUMENT");
  assert.equal(codeOf(() => validateTtlSeconds("k", NaN, LIMITS)), "INVALID_ARGUMENT");
});
