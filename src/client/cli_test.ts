import assert from "node:assert/strict";
import { connectionProblem } from "./cli.ts";

Deno.test("a failure to connect is said in a few words, without grpc-js's empty note", () => {
  assert.equal(
    connectionProblem(
      "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:45999. Resolution note: ",
    ),
    "connection refused",
  );
  assert.equal(
    connectionProblem("Name resolution failed for target dns:nosuchhost.invalid:1"),
    "the host name does not resolve",
  );
  assert.equal(
    connectionProblem("No connection established. Last error: Error: connect EWHATEVER 1.2.3.4:5."),
    "cannot connect (EWHATEVER)",
  );
  assert.equal(connectionProblem("Connection dropped. Resolution note: "), "Connection dropped");
});
