import assert from "node:assert/strict";
import { KvClient, type KvClientError } from "./client.ts";

Deno.test("a call whose int32 field cannot carry its number is refused before anything is sent", async () => {
  // Nothing listens on port 1: a call that reached the network would fail UNAVAILABLE.
  using client = new KvClient("127.0.0.1:1", { deadlineMs: 2000 });
  for (const seconds of [2 ** 32, 2 ** 31, -(2 ** 31) - 1, 1.5, Infinity]) {
    await assert.rejects(client.expire("k", seconds), (error: KvClientError) => {
      assert.equal(error.codeName, "INVALID_ARGUMENT", `${seconds}: ${error.message}`);
      assert.match(
        error.details,
        /^client: Cannot call Expire: seconds .* is not a whole number from -2147483648 to 2147483647/,
      );
      return true;
    });
  }
  await assert.rejects(client.wait(2 ** 32 + 1, 10), (error: KvClientError) => {
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.match(error.details, /num_replicas 4294967297/);
    return true;
  });
  await assert.rejects(client.expire("k", 10), (error: KvClientError) => error.codeName === "UNAVAILABLE");
});
