/**
 * Hostile input on the wire, fuzzed from a seed: every rpc of every service a kvstore
 * process serves (kvstore.KeyValueStore, grpc.health.v1.Health, reflection v1 and
 * v1alpha), on a master, its replica, a router over two shards (the master with its
 * replica, and another master) and a replica that takes pushes as from the C++ store's
 * master, sent raw bytes by a grpc-js client whose serializers pass bytes through:
 * messages with extreme field values, random mutations of them, and garbage (see
 * tests/helpers/wire_fuzz.ts for the recipes and the reference parser).
 *
 * Each call must end with a deliberate status and a message a person can act on, never
 * INTERNAL or UNKNOWN (kvstore answers INTERNAL only for its own bugs; grpc-js for a
 * request it failed to decode); a request a strict protobuf parser refuses must be
 * refused with INVALID_ARGUMENT naming what is wrong, and one it accepts must not be.
 * Streams are also cancelled midway and sent follow-ups. Afterwards no process has
 * exited, none logged a stack trace, a control character or an overlong line, the keys
 * written before the fuzz (which no fuzzed request names) are as they were on every node,
 * the replica holds exactly its master's dataset, each node still answers plain calls,
 * and nothing a call started outlives it (calls in flight, health watches, blocked Waits,
 * fake replicas).
 *
 * A run is decided by its seed: the cases follow from it (bar the addresses, history and
 * Scan cursors of the nodes, which a case may name), and what each may get does not
 * depend on the order calls reach the servers. The seed is random unless
 * KVSTORE_FUZZ_SEED gives it, and a failure names it and its cases, which
 * KVSTORE_FUZZ_CASES=N,M replays alone; KVSTORE_FUZZ_SCALE multiplies the number of cases
 * (default 1: about 3000 calls in all); KVSTORE_FUZZ_REPORT=1 prints how the calls ended,
 * by target, rpc and status.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { KvClient } from "../src/client/client.ts";
import { HashRing } from "../src/cluster/ring.ts";
import { parseShardSpec } from "../src/cluster/shard_spec.ts";
import { parseAddress } from "../src/config/address.ts";
import { VNODES_PER_SHARD_DEFAULT } from "../src/config/limits.ts";
import { quote } from "../src/errors.ts";
import { grpc } from "../src/transport/grpc.ts";
import { malformedRequestProblem, PROTO_FILES, protoFileDefinition } from "../src/transport/proto.ts";
import { startRouter } from "./helpers/cluster_process.ts";
import { metricsUrl } from "./helpers/grpc_tools.ts";
import {
  canonicalEncoding,
  type FuzzMethod,
  fuzzMethods,
  type GenerateOptions,
  generateRequest,
  hex,
  Random,
  referenceDecode,
  type ReferenceMessage,
  stringsIn,
} from "./helpers/wire_fuzz.ts";
import { digestOf, startMaster, startReplica, waitForConvergence } from "./helpers/replication.ts";
import { type ServerProcess, startServer, waitUntil } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The run's seed: KVSTORE_FUZZ_SEED, or a random one. */
const SEED = (() => {
  const text = Deno.env.get("KVSTORE_FUZZ_SEED") ?? "";
  if (text === "") return crypto.getRandomValues(new Uint32Array(1))[0];
  const seed = Number(text);
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`KVSTORE_FUZZ_SEED ${JSON.stringify(text)} is not a whole number from 0 to 4294967295`);
  }
  return seed;
})();

/** KVSTORE_FUZZ_SCALE: a multiplier of the number of cases (default 1). */
const SCALE = (() => {
  const scale = Number(Deno.env.get("KVSTORE_FUZZ_SCALE") ?? "1");
  if (!(scale > 0 && scale <= 100)) throw new Error("KVSTORE_FUZZ_SCALE must be a number above 0, at most 100");
  return scale;
})();

const REPLAY = `replay with KVSTORE_FUZZ_SEED=${SEED} tools/deno.sh test -A tests/wire_fuzz_test.ts, adding ` +
  "KVSTORE_FUZZ_CASES=N,M to run only the cases named";

/** Fails with every problem found, the seed and how to replay it. */
function assertNoProblems(problems: readonly string[], what: string): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, 25).map((problem) => `  - ${problem}`).join("\n");
  const more = problems.length > 25 ? `\n  ... and ${problems.length - 25} more` : "";
  assert.fail(`${problems.length} ${what} with seed ${SEED} (${REPLAY}):\n${shown}${more}`);
}

// ---------------------------------------------------------------------------------------
// The node's decoding against the reference parser, with no server.

/** Cases per rpc for the decoding comparison: cheap, so many. */
const DECODE_CASES_PER_RPC = Math.round(1500 * SCALE);

function requestDeserializer(method: FuzzMethod): (bytes: Buffer) => unknown {
  for (const file of PROTO_FILES) {
    const service = protoFileDefinition(file.filename)[method.service] as
      | Record<string, { requestDeserialize: (bytes: Buffer) => unknown }>
      | undefined;
    if (service?.[method.name] !== undefined) return service[method.name].requestDeserialize;
  }
  throw new Error(`No request deserializer for ${method.path}`);
}

Deno.test("the node decodes every request exactly as a strict reference parser does, or refuses it", () => {
  const problems: string[] = [];
  let malformed = 0;
  for (const [methodIndex, method] of fuzzMethods().entries()) {
    const deserialize = requestDeserializer(method);
    for (let i = 0; i < DECODE_CASES_PER_RPC; i++) {
      const random = Random.forCase(SEED, 1_000_000 + methodIndex * 100_000 + i);
      const { recipe, bytes } = generateRequest(random, method.requestType, { knownStrings: [], largeStrings: false });
      const reference = referenceDecode(bytes, method.requestType);
      const where = `${method.path} (${recipe}) ${hex(bytes)}`;
      let decoded: unknown;
      try {
        decoded = deserialize(Buffer.from(bytes));
      } catch (error) {
        problems.push(`${where}: the deserializer threw (grpc-js answers INTERNAL): ${error}`);
        continue;
      }
      const problem = malformedRequestProblem(decoded);
      if (!reference.ok) {
        malformed++;
        if (problem === null) {
          problems.push(`${where}: accepted, but a strict parser refuses it (${reference.problem})`);
        }
        continue;
      }
      if (problem !== null) {
        problems.push(`${where}: refused (${problem}), but a strict parser accepts it`);
        continue;
      }
      // What was sent, written plainly, must decode to what the node decoded.
      const expected = deserialize(Buffer.from(canonicalEncoding(reference.message, method.requestType)));
      try {
        assert.deepEqual(decoded, expected);
      } catch {
        problems.push(`${where}: decoded as ${JSON.stringify(decoded)}, but was sent as ${JSON.stringify(expected)}`);
      }
    }
  }
  assertNoProblems(problems, "requests decoded otherwise than a strict parser does");
  const total = fuzzMethods().length * DECODE_CASES_PER_RPC;
  assert.ok(malformed > total / 10 && malformed < total * 0.9, `a useful mix: ${malformed} of ${total} malformed`);
});

// ---------------------------------------------------------------------------------------
// Against real processes.

/** How many calls go at once (over two connections per target: see Target). */
const CALLS_IN_FLIGHT = 16;
/** A call's deadline: generous, so that only a call that hangs reaches it. */
const CALL_DEADLINE_MS = 30_000;
/** Wait blocks for up to its timeout_ms (0: an hour); its calls give up sooner. */
const WAIT_CALL_DEADLINE_MS = 2000;
/** A stream that is neither ended nor refused is cancelled after this many messages, or
 * this long without one. */
const STREAM_MESSAGES_MAX = 3;
const STREAM_QUIET_MS = 300;

/** Cases per rpc and target, by rpc (default: FUZZ_CASES_DEFAULT). */
const FUZZ_CASES_DEFAULT = 36;
const FUZZ_CASES: Readonly<Record<string, number>> = {
  // Each writes kvstore.rdb.
  Snapshot: 6,
  // Blocks until its deadline when it asks for replicas that never come.
  Wait: 10,
};
/** Cases per rpc on the replica that takes pushes: ReplicateCommand, its point, more;
 * and enough of the rpcs whose well-formed requests are skipped (see harmOf) that some
 * malformed ones are sent (a Promote request has no fields: most are well formed). */
const PUSHED_CASES: Readonly<Record<string, number>> = { ReplicateCommand: 150, Promote: 36, ReplicaOf: 36 };
const PUSHED_CASES_DEFAULT = 12;

/** Keys written before the fuzz, which no fuzzed request may name, with values that a
 * lenient decoder or encoder would alter (NUL, a byte order mark, the largest code point,
 * a noncharacter, CR LF, 4-byte UTF-8) and a key of exactly the 64 KiB limit. */
const CANARY_PREFIX = "canary\u0001/";
const CANARIES: ReadonlyMap<string, string> = new Map([
  ...["plain", "", "😀 emoji", "nul\u0000inside", "\ufeffbom", "\u{10ffff}\ufffe", "a\r\nb", "é".repeat(100)].map((
    value,
    i,
  ) => [`${CANARY_PREFIX}${i}`, value] as const),
  [`${CANARY_PREFIX}long-`.padEnd(64 * 1024, "k"), "x".repeat(1024 * 1024)],
]);

/** Status codes a call may end with beyond OK, and why each is deliberate. */
const DELIBERATE_CODES: ReadonlySet<grpc.status> = new Set([
  grpc.status.INVALID_ARGUMENT, // a bad request: the message says what
  grpc.status.NOT_FOUND, // a key, shard, service or symbol that is not there
  grpc.status.RESOURCE_EXHAUSTED, // over a limit: message size, batch, watches, streams
  grpc.status.FAILED_PRECONDITION, // not in this role: writes on a replica, Sync from a replica
  grpc.status.OUT_OF_RANGE,
  grpc.status.UNIMPLEMENTED, // an rpc this process does not serve
]);

/** The longest message a status may carry: it travels in an HTTP/2 header, where one of
 * tens of KiB makes the answer undeliverable (grpc-js's client reports the connection
 * lost), and a person reads a few lines, not the client's 64 KiB key. */
const DETAILS_CHARS_MAX = 2048;

/** grpc-js's own details for failures it could not explain, which tell a person nothing. */
const UNHELPFUL_DETAILS =
  /^(Unknown error|Error deserializing request|Error serializing response|Internal server error)$/;

/** Lines a process logs only when something was not handled: uncaught errors, stack
 * frames, and kvstore's own words for a bug. */
const TROUBLE_IN_LOG = /Uncaught|^\s+at .+:\d+:\d+\)?$|^error: |unexpected error|this is a bug|Unhandled/m;

/** The longest log line the fuzz may cause: what a client sent is quoted shortened. */
const LOG_LINE_CHARS_MAX = 4096;

/** Control characters a log written to a terminal must not carry (a client's escape
 * codes); tabs and line ends are fine. */
const CONTROL_CHARACTERS = /(?![\t\r])\p{Cc}/u;

interface Target {
  /** "pushed": a replica whose master only pushes (a C++ master's ReplicateCommand), which
   * applies the fuzz's pushes; it holds no canary and is compared with no one. */
  readonly name: "master" | "replica" | "router" | "pushed";
  /** The role Info reports. */
  readonly role: "master" | "replica" | "router";
  readonly process: ServerProcess;
  /** A connection for the calls that take one request and give one answer. */
  readonly client: grpc.Client;
  /** A connection of its own for the calls made as streams, which the fuzz cancels by the
   * hundred: HTTP/2 servers cut the streams of a connection whose client resets streams
   * fast (the rapid reset attack), and a unary call's verdict must not depend on what the
   * stream cases did (sharing one connection, a few calls of a run scaled up now and then
   * ended CANCELLED "Call cancelled" with no status from kvstore). */
  readonly streams: grpc.Client;
}

/** The nodes under test and what the fuzz may not do to them. */
interface Topology {
  readonly targets: readonly Target[];
  /** Addresses of every process. */
  readonly addresses: readonly string[];
  /** The ring's shards: their names, which are their masters' addresses. */
  readonly shardNames: readonly string[];
  /** The master's history, which a push to the replica may not name (it would be applied:
   * a master's pushes are trusted). */
  readonly masterReplid: string;
  /** Strings that mean something to the nodes (addresses, the history, Scan cursors), for
   * the fuzz to use and mutate. */
  readonly knownStrings: readonly string[];
}

/** One call: the messages it sends (one, or a stream's), and how it is made. */
interface FuzzCase {
  readonly index: number;
  readonly target: Target;
  readonly method: FuzzMethod;
  /** The request, or a streamed request's messages; for an rpc that takes one request,
   * none or two now and then (sent as a stream), which the transport must refuse. */
  readonly messages: readonly Uint8Array[];
  readonly recipe: string;
  /** A streamed request's side is half-closed after its messages. */
  readonly halfClose: boolean;
  /** Metadata kvstore-read-from (routers only), or none. */
  readonly readFrom: string | null;
}

interface Outcome {
  readonly code: grpc.status;
  readonly details: string;
  readonly responses: readonly Buffer[];
  /** The test cancelled the call (a stream that was neither ended nor refused). */
  readonly cancelledHere: boolean;
}

/** Why a well-formed request would change what the test relies on, or null when it may
 * be sent: the canaries, the roles, the ring. */
function harmOf(fuzzCase: FuzzCase, message: ReferenceMessage, topology: Topology): string | null {
  if (stringsIn(message).some((text) => text.startsWith(CANARY_PREFIX))) return "names a canary";
  const { name } = fuzzCase.method;
  const target = fuzzCase.target.name;
  if (name === "Promote" && (target === "replica" || target === "pushed")) return "would promote the replica";
  if (name === "ReplicateCommand" && target === "replica" && message.get("replid") === topology.masterReplid) {
    return "would be applied on the replica as its master's write";
  }
  if (name === "ReplicaOf" && target !== "router") {
    try {
      parseAddress(String(message.get("master_address") ?? ""), "master_address");
      return "would change the node's master";
    } catch {
      return null;
    }
  }
  if (name === "AddShard" && target === "router") {
    try {
      const spec = parseShardSpec(String(message.get("shard") ?? ""), "shard");
      // A node of the test, known to refuse: on the ring already, a replica, a router.
      return topology.addresses.includes(spec.master) ? null : "would add a shard";
    } catch {
      return null;
    }
  }
  if (name === "RemoveShard" && target === "router") {
    const reference = String(message.get("shard") ?? "").trim();
    return topology.shardNames.includes(reference) ? "would remove a shard" : null;
  }
  return null;
}

const STREAMED_RPCS_FOLLOW_UPS_MAX = 3;

/** Where a case is made, before its bytes are: its index (which seeds it), target and
 * rpc. */
interface PlannedCase {
  readonly index: number;
  readonly target: Target;
  readonly method: FuzzMethod;
}

/** KVSTORE_FUZZ_CASES: only these case indexes (comma-separated), to replay a failure. */
const ONLY_CASES: ReadonlySet<number> | null = (() => {
  const text = Deno.env.get("KVSTORE_FUZZ_CASES") ?? "";
  return text === "" ? null : new Set(text.split(",").map((item) => Number(item.trim())));
})();

/** The cases of the run, in a fixed order: for each target, each rpc, FUZZ_CASES of it. */
function planCases(targets: readonly Target[]): PlannedCase[] {
  const planned: PlannedCase[] = [];
  let index = 0;
  for (const target of targets) {
    for (const method of fuzzMethods()) {
      const cases = target.name === "pushed"
        ? PUSHED_CASES[method.name] ?? Math.min(PUSHED_CASES_DEFAULT, FUZZ_CASES[method.name] ?? PUSHED_CASES_DEFAULT)
        : FUZZ_CASES[method.name] ?? FUZZ_CASES_DEFAULT;
      const count = Math.max(1, Math.round(cases * SCALE));
      for (let i = 0; i < count; i++) {
        if (ONLY_CASES === null || ONLY_CASES.has(index)) planned.push({ index, target, method });
        index++;
      }
    }
  }
  return planned;
}

/** The case `planned` seeds (the same bytes whatever ran before it), or null when its
 * requests would harm what the test relies on (see harmOf). Made when its turn comes, so
 * the run holds only the cases in flight (some carry 16 MiB). */
function makeCase(planned: PlannedCase, topology: Topology): FuzzCase | null {
  const { index, target, method } = planned;
  const random = Random.forCase(SEED, index);
  const largeStrings: GenerateOptions["largeStrings"] = !random.chance(0.2)
    ? false
    : /^(Set|MSet|ReplicateCommand)$/.test(method.name)
    ? "value"
    : "key";
  const options = { knownStrings: topology.knownStrings, largeStrings };
  const first = generateRequest(random, method.requestType, options);
  const messages = [first.bytes];
  let recipe: string = first.recipe;
  if (method.requestStream) {
    const followUps = random.int(STREAMED_RPCS_FOLLOW_UPS_MAX + 1);
    for (let j = 0; j < followUps; j++) messages.push(generateRequest(random, method.requestType, options).bytes);
  }
  if (random.chance(0.04)) {
    // No request at all, or (an rpc that takes one) a second one.
    if (method.requestStream || random.chance(0.5)) messages.length = 0;
    else messages.push(generateRequest(random, method.requestType, options).bytes);
    recipe = messages.length === 0 ? "no request" : "two requests";
  }
  const fuzzCase: FuzzCase = {
    index,
    target,
    method,
    messages,
    recipe,
    halfClose: random.chance(0.5),
    readFrom: target.name === "router" && random.chance(0.15) ? random.pick(["replica", "master", "bogus", ""]) : null,
  };
  const harmful = messages.some((bytes) => {
    const decoded = referenceDecode(bytes, method.requestType);
    return decoded.ok && harmOf(fuzzCase, decoded.message, topology) !== null;
  });
  return harmful ? null : fuzzCase;
}

const passThrough = (bytes: Buffer) => bytes;

/** Makes one call of `fuzzCase`; resolves with how it ended, never rejects. */
function runCase(fuzzCase: FuzzCase): Promise<Outcome> {
  const { method, target, messages } = fuzzCase;
  const metadata = new grpc.Metadata();
  if (fuzzCase.readFrom !== null) metadata.set("kvstore-read-from", fuzzCase.readFrom);
  const deadline = Date.now() + (method.name === "Wait" ? WAIT_CALL_DEADLINE_MS : CALL_DEADLINE_MS);
  // An rpc that takes one request, given none or two, is called as a stream.
  const sendsStream = method.requestStream || messages.length !== 1;
  const client = sendsStream || method.responseStream ? target.streams : target.client;
  if (!sendsStream && !method.responseStream) {
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        method.path,
        passThrough,
        passThrough,
        Buffer.from(messages[0]),
        metadata,
        { deadline },
        (error, response) =>
          resolve({
            code: error?.code ?? grpc.status.OK,
            details: error?.details ?? "",
            responses: response === undefined ? [] : [response],
            cancelledHere: false,
          }),
      );
    });
  }
  return new Promise((resolve) => {
    const call = sendsStream
      ? client.makeBidiStreamRequest(method.path, passThrough, passThrough, metadata, { deadline })
      : client.makeServerStreamRequest(method.path, passThrough, passThrough, Buffer.from(messages[0]), metadata, {
        deadline,
      });
    const responses: Buffer[] = [];
    let cancelledHere = false;
    // A call the server must end by itself is waited for (up to the deadline), never
    // cancelled here: a stream whose first message is malformed, a second request to an
    // rpc that takes one, and no request with the client's side closed.
    const mustEnd = messages.length === 0
      ? fuzzCase.halfClose
      : !method.requestStream && messages.length > 1 || !referenceDecode(messages[0], method.requestType).ok;
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const cancel = () => {
      cancelledHere = true;
      call.cancel();
    };
    const rearm = () => {
      clearTimeout(quiet);
      if (!mustEnd) quiet = setTimeout(cancel, STREAM_QUIET_MS);
    };
    call.on("data", (response: Buffer) => {
      responses.push(response);
      if (responses.length >= STREAM_MESSAGES_MAX && !mustEnd) cancel();
      else rearm();
    });
    call.on("error", () => {/* The status says it all. */});
    call.on("status", (status: grpc.StatusObject) => {
      clearTimeout(quiet);
      resolve({ code: status.code, details: status.details, responses, cancelledHere });
    });
    if (sendsStream) {
      const writable = call as grpc.ClientDuplexStream<Buffer, Buffer>;
      for (const message of messages) writable.write(Buffer.from(message));
      if (fuzzCase.halfClose) writable.end();
    }
    rearm();
  });
}

/** What is wrong with how `fuzzCase` ended, or null. */
function judge(fuzzCase: FuzzCase, outcome: Outcome, served: ReadonlySet<string>): string | null {
  const { method, messages } = fuzzCase;
  const { code, details } = outcome;
  const codeName = grpc.status[code] ?? String(code);
  const verdicts = messages.map((bytes) => referenceDecode(bytes, method.requestType));
  const firstMalformed = verdicts.findIndex((verdict) => !verdict.ok);
  const decodeRefusal = code === grpc.status.INVALID_ARGUMENT &&
    details.startsWith(`transport: Cannot decode the ${method.name} request: `);
  const servedHere = served.has(`${fuzzCase.target.name} ${method.path}`);

  if (outcome.cancelledHere) return code === grpc.status.CANCELLED ? null : `cancelled, but ended ${codeName}`;
  if (!method.requestStream && messages.length !== 1 && servedHere) {
    // grpc-js refuses it before any handler runs.
    return code === grpc.status.UNIMPLEMENTED && /request message/.test(details)
      ? null
      : `${messages.length} requests to an rpc that takes one got ${codeName}: ${details}`;
  }
  if (code === grpc.status.OK) {
    if (firstMalformed === 0 && servedHere) return "answered OK to a request a strict parser refuses";
    for (const response of outcome.responses) {
      const verdict = referenceDecode(response, method.responseType);
      if (!verdict.ok) return `answered with a malformed ${method.responseType.name} (${verdict.problem})`;
    }
    return null;
  }
  if (details.trim() === "" || UNHELPFUL_DETAILS.test(details)) {
    return `${codeName} with no helpful message: "${details}"`;
  }
  if (details.length > DETAILS_CHARS_MAX) return `${codeName} with a message of ${details.length} characters`;
  if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN || code === grpc.status.DATA_LOSS) {
    return `${codeName}: ${details}`;
  }
  if (decodeRefusal && firstMalformed < 0) return `refused a request a strict parser accepts: ${details}`;
  if (!method.requestStream && firstMalformed === 0 && servedHere && !decodeRefusal) {
    // The one other way to refuse it: the transport's message size bound.
    if (code !== grpc.status.RESOURCE_EXHAUSTED) return `a malformed request got ${codeName}: ${details}`;
  }
  if (code === grpc.status.DEADLINE_EXCEEDED) return method.name === "Wait" ? null : `no answer: ${details}`;
  if (code === grpc.status.UNAVAILABLE) return `UNAVAILABLE with every process up: ${details}`;
  if (!DELIBERATE_CODES.has(code)) return `${codeName}, which no request of a client should get: ${details}`;
  return null;
}

/** What a run did: the problems found, and the calls made and skipped by target and rpc. */
interface RunResult {
  readonly problems: string[];
  readonly tally: Map<string, number>;
  calls: number;
  skipped: number;
}

/** Makes and runs the `planned` cases with at most CALLS_IN_FLIGHT calls at once. */
async function runCases(planned: readonly PlannedCase[], topology: Topology, served: ReadonlySet<string>) {
  const result: RunResult = { problems: [], tally: new Map(), calls: 0, skipped: 0 };
  let next = 0;
  const worker = async () => {
    while (next < planned.length) {
      const fuzzCase = makeCase(planned[next++], topology);
      if (fuzzCase === null) {
        result.skipped++;
        continue;
      }
      result.calls++;
      const outcome = await runCase(fuzzCase);
      const decodeRefusal = outcome.details.startsWith("transport: Cannot decode") ? " (decode)" : "";
      const key = `${fuzzCase.target.name} ${fuzzCase.method.path} ${grpc.status[outcome.code]}${decodeRefusal}`;
      result.tally.set(key, (result.tally.get(key) ?? 0) + 1);
      const problem = judge(fuzzCase, outcome, served);
      if (problem !== null) {
        result.problems.push(
          `case ${fuzzCase.index}: ${fuzzCase.method.path} on the ${fuzzCase.target.name} (${fuzzCase.recipe}, ` +
            `${fuzzCase.messages.map((bytes) => hex(bytes, 48)).join(" | ")}): ${problem}`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: CALLS_IN_FLIGHT }, worker));
  return result;
}

/** The rpcs each target serves: every one but those grpc-js answers UNIMPLEMENTED for
 * having no handler (the cluster rpcs on a node). */
async function servedRpcs(targets: readonly Target[]): Promise<Set<string>> {
  const served = new Set<string>();
  for (const target of targets) {
    for (const method of fuzzMethods()) {
      const outcome = await runCase({
        index: -1,
        target,
        method,
        // A request no parser accepts: answered at once, whatever the rpc.
        messages: [Uint8Array.from([0xff])],
        recipe: "probe",
        halfClose: true,
        readFrom: null,
      });
      if (!/does not implement the method/.test(outcome.details)) served.add(`${target.name} ${method.path}`);
    }
  }
  return served;
}

/** A cursor of a Scan under way on each of `addresses`. */
async function scanCursors(addresses: readonly string[]): Promise<string[]> {
  const cursors: string[] = [];
  for (const address of addresses) {
    using client = new KvClient(address, { deadlineMs: 30_000 });
    const page = await client.scan({ limit: 1 });
    assert.notEqual(page.cursor, "", "a Scan of one key of several goes on");
    cursors.push(page.cursor);
  }
  return cursors;
}

/** A client of its own connection to `address`. */
function rawClient(address: string): grpc.Client {
  return new grpc.Client(address, grpc.credentials.createInsecure(), {
    // The fuzz sends and reads what the server's bounds allow and more.
    "grpc.max_send_message_length": -1,
    "grpc.max_receive_message_length": -1,
    "grpc.use_local_subchannel_pool": 1,
  });
}

Deno.test(
  "every rpc of a master, its replica, a router and a pushed replica answers hostile requests with a deliberate status",
  opts,
  async () => {
    // Metrics show what a call left behind: calls in flight, health watches, blocked Waits.
    const metrics = ["--metrics-address", "127.0.0.1:0"];
    await using master = await startMaster(metrics);
    await using other = await startServer();
    // A longer replication timeout: a master slowed by the fuzz on a loaded machine must
    // not make its replica give up the link, during which it would take a C++ master's
    // pushes from the fuzz (and drop its data for them).
    await using replica = await startReplica(master, ["--repl-timeout-ms", "120000", ...metrics]);
    await using router = await startRouter({
      shards: [`${master.address}+${replica.address}`, other.address],
      args: metrics,
    });
    // A master nobody serves: the replica takes pushes, as from the C++ store's master.
    await using pushed = await startReplica("127.0.0.1:1", metrics);
    const processes = { master, replica, router, pushed, other };
    const targets: Target[] = (["master", "replica", "router", "pushed"] as const).map((name) => {
      const process = processes[name];
      const role = name === "pushed" ? "replica" : name;
      return { name, role, process, client: rawClient(process.address), streams: rawClient(process.address) };
    });
    try {
      // Canaries on both shards, through the router; and keys the fuzz may touch, so a
      // Scan of the master has a page after its first.
      {
        using client = new KvClient(router.address, { deadlineMs: 30_000 });
        for (const [key, value] of CANARIES) assert.equal(await client.set(key, value), true);
        using masterClient = new KvClient(master.address, { deadlineMs: 30_000 });
        assert.equal(await masterClient.mset(["k", "fuzz", "k2"].map((key) => ({ key, value: key }))), 3);
      }
      await waitForConvergence(master, [replica]);
      const addresses = [master.address, replica.address, router.address, pushed.address, other.address];
      const topology: Topology = {
        targets,
        addresses,
        shardNames: [master.address, other.address],
        masterReplid: (await digestOf(master.address)).replid,
        knownStrings: [
          ...addresses,
          (await digestOf(master.address)).replid,
          ...await scanCursors([master.address, router.address]),
          "k",
          "fuzz",
          "kvstore.KeyValueStore",
          "grpc.health.v1.Health",
        ],
      };

      const served = await servedRpcs(targets);
      const planned = planCases(targets);
      const { problems, tally, calls, skipped } = await runCases(planned, topology, served);
      if (Deno.env.get("KVSTORE_FUZZ_REPORT") === "1") report(seedLine(calls, skipped), tally);

      // Every rpc was called on every target (bar a replay of chosen cases), and the
      // cases were mostly sent, not skipped.
      const notCalled = targets.flatMap((target) =>
        fuzzMethods().filter((method) =>
          ![...tally.keys()].some((key) => key.startsWith(`${target.name} ${method.path} `))
        )
          .map((method) => `${target.name} ${method.path}`)
      );
      if (ONLY_CASES === null) assert.deepEqual(notCalled, [], "rpcs no case called");
      assert.ok(skipped <= calls / 10, `${skipped} cases skipped of ${calls + skipped}`);

      for (const [name, process] of Object.entries(processes)) {
        if (!process.running) problems.push(`the ${name} exited during the fuzz:\n${process.stderr.slice(-3000)}`);
        const trouble = process.stderr.match(TROUBLE_IN_LOG);
        if (trouble !== null) {
          const at = process.stderr.indexOf(trouble[0]);
          problems.push(`the ${name} logged trouble: ${process.stderr.slice(Math.max(0, at - 500), at + 1500)}`);
        }
        const lines = process.stderr.split("\n");
        const long = lines.find((line) => line.length > LOG_LINE_CHARS_MAX);
        if (long !== undefined) {
          problems.push(`the ${name} logged a line of ${long.length} characters: ${long.slice(0, 300)}`);
        }
        const raw = lines.find((line) => CONTROL_CHARACTERS.test(line));
        if (raw !== undefined) {
          problems.push(`the ${name} logged control characters: ${JSON.stringify(raw.slice(0, 300))}`);
        }
      }
      assertNoProblems(problems, `problems in ${calls} calls`);

      await checkStillServing(topology, master, replica);
    } finally {
      for (const target of targets) {
        target.client.close();
        target.streams.close();
      }
    }
  },
);

function seedLine(calls: number, skipped: number): string {
  return `wire fuzz: seed ${SEED}, ${calls} calls (${skipped} skipped as harmful to the test)`;
}

/** Writes how the calls ended, by target, rpc and status (KVSTORE_FUZZ_REPORT=1). */
function report(title: string, tally: ReadonlyMap<string, number>): void {
  const lines = [...tally].sort(([a], [b]) => (a < b ? -1 : 1)).map(([key, count]) => `  ${key} ${count}`);
  Deno.stderr.writeSync(new TextEncoder().encode(`${title}\n${lines.join("\n")}\n`));
}

/** After the fuzz: each node serves plain calls and reports SERVING, roles are as they
 * were, the replica holds exactly its master's dataset (nothing half-applied diverged),
 * every canary is as written on the nodes that own it, and the master's fake replicas
 * (fuzzed Sync and StreamReplication streams) are gone. */
async function checkStillServing(topology: Topology, master: ServerProcess, replica: ServerProcess) {
  for (const target of topology.targets) {
    using client = new KvClient(target.process.address, { deadlineMs: 30_000 });
    assert.equal((await client.info()).role, target.role, `the ${target.name} kept its role`);
    if (target.role !== "replica") {
      assert.equal(await client.set(`after-fuzz/${target.name}`, "ok"), true);
      assert.equal(await client.get(`after-fuzz/${target.name}`), "ok");
    }
    // A replica that only takes pushes serves once a push came; the fuzz's may all have
    // been refused.
    if (target.name === "pushed") continue;
    const health = await runCase({
      index: -1,
      target,
      method: fuzzMethods().find((method) => method.path === "/grpc.health.v1.Health/Check")!,
      messages: [new Uint8Array()],
      recipe: "check",
      halfClose: true,
      readFrom: null,
    });
    assert.deepEqual([health.code, [...(health.responses[0] ?? [])]], [grpc.status.OK, [0x08, 1]], "SERVING");
  }
  await waitForConvergence(master, [replica]);
  // The ring the router built from --shards, whose shard names are the masters' addresses.
  const ring = new HashRing([...topology.shardNames], VNODES_PER_SHARD_DEFAULT);
  for (const target of topology.targets.filter((target) => target.name !== "pushed")) {
    using client = new KvClient(target.process.address, { deadlineMs: 30_000 });
    const values = await client.mget([...CANARIES.keys()]);
    for (const [i, [key, value]] of [...CANARIES].entries()) {
      const held = target.name === "router" || ring.owner(key) === master.address;
      assert.equal(values[i], held ? value : undefined, `canary ${quote(key)} on the ${target.name}`);
    }
  }
  await waitUntil(
    async () => {
      using client = new KvClient(master.address);
      return (await client.info()).replicas?.length === 1;
    },
    "the master lists its one real replica only",
    30_000,
    100,
  );
  // Nothing a call started outlives it: no call in flight (streams the fuzz cancelled
  // included), no health watch, no Wait blocked.
  for (const target of topology.targets) {
    const url = await metricsUrl(target.process);
    const leftovers = async () => {
      const text = await (await fetch(url)).text();
      for (const name of ["kvstore_rpc_in_flight", "kvstore_health_watchers"]) {
        assert.match(text, new RegExp(`^${name} `, "m"), `the ${target.name} reports ${name}`);
      }
      const sum = (name: string) =>
        [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].reduce(
          (total, [, value]) => total + Number(value),
          0,
        );
      return {
        inFlight: sum("kvstore_rpc_in_flight"),
        watchers: sum("kvstore_health_watchers"),
        waits: sum("kvstore_replication_waits_blocked"),
      };
    };
    let last = await leftovers();
    await waitUntil(
      async () => {
        last = await leftovers();
        return last.inFlight === 0 && last.watchers === 0 && last.waits === 0;
      },
      `the ${target.name} holds nothing of the fuzz's calls (${JSON.stringify(last)})`,
      30_000,
      100,
    ).catch((error) => assert.fail(`${error.message}: ${JSON.stringify(last)}`));
  }
}
