import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { setImmediate } from "node:timers";
import v8 from "node:v8";
import vm from "node:vm";
import { nextTurn } from "../event_loop.ts";
import { silentLogger } from "../logging/logger.ts";
import { WriteStaging } from "../store/staging.ts";
import { Store } from "../store/store.ts";
import { Backlog } from "./backlog.ts";
import { MasterStreams, replicaAddress } from "./master_streams.ts";
import { ReplicaRegistry } from "./replica_registry.ts";

Deno.test("a replica's address is shown as it advertises it, with a wildcard host replaced by where it connects from", () => {
  assert.equal(replicaAddress("10.0.0.5:50052", "10.0.0.5:41234"), "10.0.0.5:50052");
  assert.equal(replicaAddress("0.0.0.0:50052", "10.0.0.5:41234"), "10.0.0.5:50052");
  assert.equal(replicaAddress("0.0.0.0:50052", "::ffff:127.0.0.1:41234"), "127.0.0.1:50052");
  assert.equal(replicaAddress("[::]:50052", "::1:41234"), "[::1]:50052");
  assert.equal(
    replicaAddress("", "ipv4:10.0.0.7:5000"),
    "10.0.0.7:5000",
    "a pull client is shown where it connects from",
  );
});

/** A server stream as grpc-js hands it to StreamReplication: it takes every message,
 * but asks the writer to wait for "drain" after each, as a slow network would. */
class FakeServerStream extends EventEmitter {
  readonly request = { start_sequence: "1", replica_id: "tail" };
  sent = 0;

  getPeer(): string {
    return "ipv4:127.0.0.1:5000";
  }

  write(_message: unknown): boolean {
    this.sent++;
    setImmediate(() => this.emit("drain"));
    return false;
  }
}

Deno.test("a long-lived stream keeps nothing per command once each wait is over", async () => {
  // A full collection before each measure, so the heap shows what is retained.
  v8.setFlagsFromString("--expose-gc");
  const collectGarbage = vm.runInNewContext("gc") as () => void;
  const backlog = new Backlog({ bytesMax: 64 * 1024, lastSeq: 0 });
  const streams = new MasterStreams({
    staging: new WriteStaging(new Store(), 0),
    backlog: () => backlog,
    registry: new ReplicaRegistry(),
    position: () => ({
      replid: "r".repeat(40),
      seq: backlog.lastSeq,
      previousReplid: null,
      previousLastSeq: 0,
      backlogFirstSeq: backlog.firstSeq,
    }),
    nodeId: "master",
    messageBytesMax: 4 * 1024 * 1024,
    logger: silentLogger(),
    clock: () => 0,
  });
  const stream = new FakeServerStream();
  streams.serveStream(stream as unknown as Parameters<MasterStreams["serveStream"]>[0]);
  const commands = 50_000;
  collectGarbage();
  const heapBefore = Deno.memoryUsage().heapUsed;
  for (let seq = 1; seq <= commands; seq++) {
    backlog.append([{ seq, command: { kind: "delete", key: "k" } }], 0);
    streams.notifyAppended();
    await nextTurn();
    await nextTurn();
  }
  collectGarbage();
  const retainedBytes = Deno.memoryUsage().heapUsed - heapBefore;
  assert.equal(stream.sent, commands, "every command was sent, each after its own wait");
  // Before waits unregistered themselves, the waits for each command and its "drain"
  // held about 1 KB until the stream closed (50 MB here).
  assert.ok(retainedBytes < 10 * 1024 * 1024, `${Math.round(retainedBytes / 1024)} KiB retained`);
  stream.emit("cancelled");
  await nextTurn();
  assert.equal(streams.size, 0, "the session ended with its stream");
});

/** A Sync stream as Deno's transport hands it over: it takes every message at once,
 * whether or not the replica reads. */
class FakeSyncStream extends EventEmitter {
  readonly messages: { type: string; commands: unknown[] }[] = [];

  getPeer(): string {
    return "ipv4:127.0.0.1:5001";
  }

  write(message: { type: string; commands: unknown[] }): boolean {
    this.messages.push(message);
    return true;
  }
}

Deno.test("a Sync session sends no more than its bound ahead of what the replica reports handled", async () => {
  const replid = "r".repeat(40);
  const backlog = new Backlog({ bytesMax: 64 * 1024 * 1024, lastSeq: 0 });
  const value = "x".repeat(100 * 1024);
  for (let seq = 1; seq <= 100; seq++) {
    backlog.append([{ seq, command: { kind: "set", key: `k${seq}`, value, expiresAtMs: null } }], 0);
  }
  const streams = new MasterStreams({
    staging: new WriteStaging(new Store(), 100),
    backlog: () => backlog,
    registry: new ReplicaRegistry(),
    position: () => ({ replid, seq: 100, previousReplid: null, previousLastSeq: 0, backlogFirstSeq: 1 }),
    nodeId: "master",
    messageBytesMax: 4 * 1024 * 1024,
    logger: silentLogger(),
    clock: () => 0,
  });
  const stream = new FakeSyncStream();
  streams.serveSync(stream as unknown as Parameters<MasterStreams["serveSync"]>[0]);
  stream.emit("data", { replica_id: "replica", replid, seq: "0", address: "", acked_seq: "0", reports_handled: true });
  const settle = async () => {
    for (let i = 0; i < 20; i++) await nextTurn();
  };
  await settle();
  const commandsSent = () => stream.messages.reduce((sum, message) => sum + message.commands.length, 0);
  // The header, then messages of 10 commands (1 MiB) while less than 4 MiB is
  // outstanding: 5 of them, whatever the transport would take.
  const sentBefore = commandsSent();
  assert.equal(stream.messages[0].type, "SYNC_PARTIAL");
  assert.equal(sentBefore, 50, "commands sent before any report");
  await settle();
  assert.equal(commandsSent(), sentBefore, "nothing more without a report");
  stream.emit("data", { acked_seq: "0", handled_messages: String(stream.messages.length) });
  await settle();
  assert.equal(commandsSent(), 100, "the rest once the replica handled what it had");
  stream.emit("cancelled");
  await nextTurn();
  assert.equal(streams.size, 0);
});

Deno.test("a Sync stream whose replica closes its side before the handshake is refused at once", async () => {
  const streams = new MasterStreams({
    staging: new WriteStaging(new Store(), 0),
    backlog: () => new Backlog({ bytesMax: 1024, lastSeq: 0 }),
    registry: new ReplicaRegistry(),
    position: () => ({ replid: "r".repeat(40), seq: 0, previousReplid: null, previousLastSeq: 0, backlogFirstSeq: 1 }),
    nodeId: "master",
    messageBytesMax: 4 * 1024 * 1024,
    logger: silentLogger(),
    clock: () => 0,
  });
  const stream = new FakeSyncStream();
  const errors: { code: number; details: string }[] = [];
  stream.on("error", (error) => errors.push(error));
  streams.serveSync(stream as unknown as Parameters<MasterStreams["serveSync"]>[0]);
  // No handshake: the stream's request side ends (it used to wait SYNC_HANDSHAKE_TIMEOUT_MS).
  stream.emit("end");
  for (let i = 0; i < 5; i++) await nextTurn();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 3, "INVALID_ARGUMENT");
  assert.match(errors[0].details, /^replication: The Sync stream ended before its handshake/);
  assert.equal(stream.messages.length, 0);
  assert.equal(streams.size, 0, "the session is over");
});

Deno.test("a Sync acknowledgement counts only up to what the stream has sent", async () => {
  const replid = "r".repeat(40);
  const backlog = new Backlog({ bytesMax: 1024 * 1024, lastSeq: 0 });
  for (let seq = 1; seq <= 3; seq++) backlog.append([{ seq, command: { kind: "delete", key: `k${seq}` } }], 0);
  const registry = new ReplicaRegistry();
  const streams = new MasterStreams({
    staging: new WriteStaging(new Store(), 3),
    backlog: () => backlog,
    registry,
    position: () => ({ replid, seq: backlog.lastSeq, previousReplid: null, previousLastSeq: 0, backlogFirstSeq: 1 }),
    nodeId: "master",
    messageBytesMax: 4 * 1024 * 1024,
    logger: silentLogger(),
    clock: () => 0,
  });
  const stream = new FakeSyncStream();
  streams.serveSync(stream as unknown as Parameters<MasterStreams["serveSync"]>[0]);
  stream.emit("data", { replica_id: "liar", replid, seq: "1", address: "", acked_seq: "0" });
  for (let i = 0; i < 10; i++) await nextTurn();
  // A partialSync after seq 1, then seqs 2 and 3: the stream has sent up to seq 3.
  stream.emit("data", { acked_seq: "1000000000000000" });
  assert.equal(registry.get("liar")?.ackedSeq, 3, "clamped to what was sent");
  backlog.append([{ seq: 4, command: { kind: "delete", key: "k4" } }], 0);
  assert.equal(registry.countAcked(4), 0, "a later write is not acknowledged before it is sent");
  stream.emit("cancelled");
  await nextTurn();
});
