import assert from "node:assert/strict";
import { parseAddress } from "./address.ts";

Deno.test("an address's host name may have the 253 characters DNS allows, not more", () => {
  assert.equal(parseAddress(`${"a".repeat(253)}:1`, "--address").host.length, 253);
  assert.throws(
    () => parseAddress(`${"a".repeat(100_000)}:1`, "master_address"),
    /^UsageError: Invalid master_address "a{64}\.\.\.": the host name is 100000 characters, over the 253 DNS allows$/,
  );
});

Deno.test("an invalid address is quoted shortened in the message, however long it is", () => {
  for (const text of [`${"b".repeat(200)}!:1`, `x${":".repeat(100_000)}`, `[${"f".repeat(100_000)}]:1`]) {
    assert.throws(() => parseAddress(text, "shard"), (error: Error) => {
      assert.ok(error.message.length < 300, `${error.message.length} characters: ${error.message.slice(0, 100)}`);
      return true;
    });
  }
});
