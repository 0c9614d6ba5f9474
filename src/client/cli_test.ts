import assert from "node:assert/strict";
import { USAGE_WIDTH } from "../config/usage_text.ts";
import { CLIENT_COMMANDS, commandsOverview, commandUsage, describeFailure } from "./cli.ts";
import { connectionLoss, connectionProblem } from "../transport/transport_failure.ts";
import { KvClientError } from "./client.ts";
import { grpc } from "../transport/grpc.ts";

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

Deno.test("a router's DEADLINE_EXCEEDED is its own answer, naming the shard, not the router's silence", () => {
  const details = `router: The call's deadline passed before shard "a" at 127.0.0.1:7101 answered (waited 1800 ms ` +
    "for it); the write may or may not have been applied on that shard (read it back to know)";
  const routed = KvClientError.fromStatus({ code: 4, details }, "127.0.0.1:7000", { rpc: "Set" });
  assert.equal(routed.outcomeUnknown, true);
  assert.equal(describeFailure(routed, "127.0.0.1:7000", 2000), `DEADLINE_EXCEEDED: ${details}`);
  const silent = KvClientError.fromStatus({ code: 4, details: "Deadline exceeded after 2.001s" }, "127.0.0.1:7000", {
    rpc: "Get",
  });
  assert.equal(
    describeFailure(silent, "127.0.0.1:7000", 2000),
    "No answer from 127.0.0.1:7000 within 2000 ms (raise --timeout-ms, or check the server)",
  );
});

Deno.test("a router's trailer makes a write it lost on its shard's connection an unknown outcome", () => {
  const trailer = new grpc.Metadata();
  trailer.set("kvstore-outcome", "unknown");
  const details = 'router: Connection to shard "a" at 127.0.0.1:7101 lost during the call (read ECONNRESET); the ' +
    "write may or may not have been applied on that shard (read it back to know)";
  const routed = KvClientError.fromStatus({ code: 14, details, metadata: trailer }, "127.0.0.1:7000", { rpc: "Set" });
  assert.equal(routed.codeName, "UNAVAILABLE");
  assert.equal(routed.transport, null, "the router answered");
  assert.equal(routed.outcomeUnknown, true);
  assert.equal(describeFailure(routed, "127.0.0.1:7000", 5000), `UNAVAILABLE: ${details}`);
  const plain = KvClientError.fromStatus({ code: 14, details, metadata: new grpc.Metadata() }, "127.0.0.1:7000", {
    rpc: "Set",
  });
  assert.equal(plain.outcomeUnknown, false, "no trailer, no claim");
});

Deno.test("a connection reset before it was set up (a paused or dying server) is said in a few words", () => {
  // grpc-js's message when the server accepted the TCP connection and then reset it.
  assert.equal(
    connectionProblem("No connection established. Last error: read ECONNRESET (2026-12-05T13:08:48.905Z)"),
    "the connection was reset before it was set up",
  );
  assert.equal(
    connectionProblem("No connection established. Last error: write EPIPE (2026-12-05T13:08:48.905Z)"),
    "the server closed the connection before it was set up",
  );
  assert.equal(
    connectionProblem("No connection established. Last error: something new (2026-12-05T13:08:48.905Z)"),
    "No connection established. Last error: something new",
  );
});

Deno.test("a connection lost mid-call is said as such, and a write's outcome as unknown", () => {
  const lost = (rpc: string) =>
    KvClientError.fromStatus(
      { code: 13, details: "Received RST_STREAM with code 2 triggered by internal client error: write EPIPE" },
      "127.0.0.1:50051",
      { rpc },
    );
  const write = lost("Set");
  assert.equal(write.codeName, "UNAVAILABLE");
  assert.equal(write.transport, "lost");
  assert.equal(write.outcomeUnknown, true);
  assert.equal(
    describeFailure(write, "127.0.0.1:50051", 5000),
    "Connection to 127.0.0.1:50051 lost during the call (the server closed the connection); the write may or may " +
      "not have been applied (read it back to know)",
  );
  const read = lost("Get");
  assert.equal(read.outcomeUnknown, false);
  assert.equal(
    describeFailure(read, "127.0.0.1:50051", 5000),
    "Connection to 127.0.0.1:50051 lost during the call (the server closed the connection); the server may have " +
      "stopped or restarted: retry",
  );
  const refused = KvClientError.fromStatus(
    { code: 14, details: "No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1." },
    "127.0.0.1:1",
    { rpc: "Set" },
  );
  assert.equal(refused.transport, "unreached");
  assert.equal(refused.outcomeUnknown, false, "nothing was sent");
  assert.match(describeFailure(refused, "127.0.0.1:1", 5000), /^Cannot reach 127.0.0.1:1: connection refused/);
  const late = KvClientError.fromStatus({ code: 4, details: "Deadline exceeded" }, "127.0.0.1:1", { rpc: "MSet" });
  assert.match(
    describeFailure(late, "127.0.0.1:1", 5000),
    /within 5000 ms .*; the write may or may not have been applied/,
  );
  const answer = KvClientError.fromStatus(
    { code: 14, details: 'server: Cannot set key "k": this node is shutting down' },
    "127.0.0.1:1",
    { rpc: "Set" },
  );
  assert.equal(
    describeFailure(answer, "127.0.0.1:1", 5000),
    'UNAVAILABLE: server: Cannot set key "k": this node is shutting down',
  );
  assert.equal(connectionLoss("read ECONNRESET"), "the connection was reset");
});

Deno.test("a DEADLINE_EXCEEDED the server answered keeps its message; only the client's own deadline is a timeout", () => {
  // A router answers DEADLINE_EXCEEDED naming the shard that did not answer, a moment
  // before the client's deadline, so that the user learns which shard hangs.
  const fromRouter = KvClientError.fromStatus(
    {
      code: 4,
      details:
        'router: The call\'s deadline passed before shard "s2" at 127.0.0.1:7102 answered (waited 4501 ms for it)',
    },
    "127.0.0.1:50051",
    { rpc: "Get" },
  );
  assert.equal(
    describeFailure(fromRouter, "127.0.0.1:50051", 5000),
    'DEADLINE_EXCEEDED: router: The call\'s deadline passed before shard "s2" at 127.0.0.1:7102 answered ' +
      "(waited 4501 ms for it)",
  );
  // grpc-js's own message when the client's deadline passes.
  const own = KvClientError.fromStatus(
    { code: 4, details: "Deadline exceeded after 5.002s,LB pick: 0.001s,remote_addr=127.0.0.1:50051" },
    "127.0.0.1:50051",
    { rpc: "Get" },
  );
  assert.equal(
    describeFailure(own, "127.0.0.1:50051", 5000),
    "No answer from 127.0.0.1:50051 within 5000 ms (raise --timeout-ms, or check the server)",
  );
});

Deno.test("every subcommand's help, and the list of them, fits the help width with no broken paragraph", () => {
  for (const command of CLIENT_COMMANDS.values()) {
    const help = commandUsage(command);
    for (const line of help.split("\n")) {
      assert.ok(line.length <= USAGE_WIDTH, `kvstore ${command.name} --help: ${line.length} columns: ${line}`);
    }
  }
  for (const line of commandsOverview().split("\n")) assert.ok(line.length <= USAGE_WIDTH, line);
  // A paragraph is not cut short of the width (import's was, after "stops the import").
  const importHelp = commandUsage(CLIENT_COMMANDS.get("import")!);
  assert.match(importHelp, /A line that cannot be read stops the import after everything before it was written/);
  // repair talks to no server: no --endpoint, no --timeout-ms.
  assert.doesNotMatch(commandUsage(CLIENT_COMMANDS.get("repair")!), /--endpoint|--timeout-ms/);
});
