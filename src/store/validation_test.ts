import assert from "node:assert/strict";
import { KvError } from "../errors.ts";
import {
  validateBatchSize,
  validateEntryDeadline,
  validateKey,
  validateMGetAnswer,
  validateScanLimit,
  validateTtlSeconds,
  validateValue,
} from "./validation.ts";

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

Deno.test("an MSet entry's deadline is absolute or a TTL from now, never both, within the TTL limit", () => {
  const nowMs = 1_000_000;
  assert.equal(validateEntryDeadline({ key: "k" }, nowMs, LIMITS), null);
  assert.equal(validateEntryDeadline({ key: "k", ttlMs: 5000 }, nowMs, LIMITS), nowMs + 5000);
  assert.equal(validateEntryDeadline({ key: "k", expiresAtMs: nowMs + 100_000 }, nowMs, LIMITS), nowMs + 100_000);
  assert.equal(validateEntryDeadline({ key: "k", expiresAtMs: 1 }, nowMs, LIMITS), 1, "a past deadline deletes");
  assert.throws(() => validateEntryDeadline({ key: "k", expiresAtMs: 5, ttlMs: 5 }, nowMs, LIMITS), /not both/);
  assert.throws(() => validateEntryDeadline({ key: "k", ttlMs: 100_001 }, nowMs, LIMITS), /--max-ttl-seconds/);
  assert.throws(() => validateEntryDeadline({ key: "k", ttlMs: 1.5 }, nowMs, LIMITS), /must be a whole number/);
  assert.throws(
    () => validateEntryDeadline({ key: "k", expiresAtMs: nowMs + 100_001 }, nowMs, LIMITS),
    /within 100 s from now/,
  );
});

Deno.test("batches and scan pages are bounded; a scan limit of 0 means the default page", () => {
  assert.equal(codeOf(() => validateBatchSize(10_000, "read")), undefined);
  assert.throws(() => validateBatchSize(10_001, "write"), /Cannot write 10001 keys in one call.*split the batch/);
  assert.equal(validateScanLimit(0), 100);
  assert.equal(validateScanLimit(7), 7);
  assert.throws(() => validateScanLimit(10_001), /limit 10001 is not from 1 to 10000/);
  assert.throws(() => validateScanLimit(-1), /limit -1 is not/);
});

Deno.test("an MGet answer past the message limit is RESOURCE_EXHAUSTED, saying to ask for fewer keys", () => {
  // The limit is 8 + 16 + 64 KiB: 65560 bytes.
  const limits = { keyBytesMax: 8, valueBytesMax: 16, ttlSecondsMax: 100 };
  validateMGetAnswer(new Array(10_000).fill(undefined), false, limits);
  validateMGetAnswer(new Array(4000).fill(undefined), true, limits);
  validateMGetAnswer(new Array(4000).fill("v".repeat(2)), false, limits);
  assert.throws(
    () => validateMGetAnswer([...new Array(5000).fill("vvvvvvvvvv"), undefined], false, limits),
    (error: KvError) => {
      assert.equal(error.code, "RESOURCE_EXHAUSTED");
      assert.equal(
        error.message,
        "store: Cannot answer an MGet of 5001 keys: the 5000 values found come to about 120002 bytes, over the " +
          "65560 one answer may carry (--max-key-bytes plus --max-value-bytes plus 64 KiB); ask for fewer keys per call",
      );
      return true;
    },
  );
  // Characters that take 3 bytes each count as 3.
  assert.throws(() => validateMGetAnswer(new Array(2000).fill("€".repeat(10)), false, limits), /fewer keys/);
  validateMGetAnswer(new Array(1000).fill("€".repeat(10)), false, limits);
  // Deadlines count too.
  assert.throws(() => validateMGetAnswer(new Array(6000).fill(undefined), true, limits), /fewer keys/);
});

Deno.test("an MSet TTL over the limit is said in seconds, as Expire's is, not as a bare ttl_ms", () => {
  const limits = { keyBytesMax: 8, valueBytesMax: 16, ttlSecondsMax: 315_360_000 };
  // `kvstore set k v --ttl 400000000` sends ttl_ms 400000000000.
  assert.throws(
    () => validateEntryDeadline({ key: "k", ttlMs: 400_000_000_000 }, 0, limits),
    {
      message: 'store: Cannot set key "k": a TTL of 400000000 seconds (ttl_ms 400000000000) is over the limit of ' +
        "315360000 (3650 days; raise it with --max-ttl-seconds)",
    },
  );
  assert.throws(
    () => validateEntryDeadline({ key: "k", ttlMs: 1.5 }, 0, limits),
    { message: 'store: Cannot set key "k": ttl_ms must be a whole number of milliseconds, got 1.5' },
  );
});
