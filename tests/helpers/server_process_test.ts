import assert from "node:assert/strict";
import { kvstoreBin } from "./server_process.ts";

Deno.test("KVSTORE_BIN: a relative path is taken from where the tests run, not from a server's directory", () => {
  assert.equal(kvstoreBin("./kvstore", "/home/me/kvstore"), "/home/me/kvstore/kvstore");
  assert.equal(kvstoreBin("dist/kvstore", "/repo"), "/repo/dist/kvstore");
  assert.equal(kvstoreBin("/opt/kvstore/bin/kvstore", "/repo"), "/opt/kvstore/bin/kvstore");
});

Deno.test("KVSTORE_BIN: a bare name is left to the PATH search, and unset or empty means deno run main.ts", () => {
  assert.equal(kvstoreBin("kvstore", "/repo"), "kvstore");
  assert.equal(kvstoreBin(undefined, "/repo"), null);
  assert.equal(kvstoreBin("", "/repo"), null);
});
