import assert from "node:assert/strict";
import { STATUS_DETAILS_CHARS_MAX } from "../config/limits.ts";
import { invalidArgument } from "../errors.ts";
import { silentLogger } from "../logging/logger.ts";
import { statusDetails, toServiceError } from "./status.ts";

Deno.test("a status message is cut to STATUS_DETAILS_CHARS_MAX, saying so", () => {
  assert.equal(statusDetails("short"), "short");
  const long = statusDetails("x".repeat(100_000));
  assert.equal(long.length, STATUS_DETAILS_CHARS_MAX);
  assert.match(long, /x \.\.\. \(cut\)$/);
  const error = toServiceError(invalidArgument(`store: Cannot do it: ${"y".repeat(70_000)}`), "Get", silentLogger());
  assert.equal(error.details?.length, STATUS_DETAILS_CHARS_MAX);
});

Deno.test("a cut status message never ends in half a surrogate pair, which grpc-js cannot URI-encode", () => {
  for (let shift = 0; shift < 4; shift++) {
    const details = statusDetails("a".repeat(STATUS_DETAILS_CHARS_MAX - 12 + shift) + "😀".repeat(5000));
    assert.doesNotThrow(() => encodeURI(details), `shift ${shift}`);
  }
});
