/**
 * The transport's ceiling: a grpc-js server with kvstore's transport options whose Get
 * and Set handlers answer from a plain Map. The throughput benchmark runs it beside
 * kvstore on the same core; the gap between the two is what kvstore's own work costs.
 *
 * Its service definition is proto-loader's own, with kvstore's loader options: not the
 * one kvstore serves (transport/proto.ts), whose request deserializers first check the
 * bytes strictly (transport/wire_check.ts). That check is kvstore's work, so it belongs
 * on kvstore's side of the gap, not in the ceiling.
 *
 * Usage: deno run -A bench/bare_server.ts [--address 127.0.0.1:0]
 * Prints "Listening on HOST:PORT" on stderr once it serves.
 */

import { parseArgs } from "node:util";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { parseAddress } from "../src/config/address.ts";
import { VALUE_BYTES_MAX_DEFAULT } from "../src/config/limits.ts";
import { createServer, type grpc, listen, transportLimitsFor } from "../src/transport/grpc.ts";
import { KVSTORE_SERVICE, PROTO_LOADER_OPTIONS } from "../src/transport/proto.ts";
import protoText from "../proto/kvstore.proto" with { type: "text" };

interface KeyValue {
  key: string;
  value: string;
}

const { values } = parseArgs({ args: Deno.args, options: { address: { type: "string", default: "127.0.0.1:0" } } });
const address = parseAddress(values.address!, "--address");
const data = new Map<string, string>();
const server = createServer(transportLimitsFor(64 * 1024, VALUE_BYTES_MAX_DEFAULT));
const definition = protoLoader.fromJSON(
  protobuf.parse(protoText, { keepCase: true }).root.toJSON(),
  PROTO_LOADER_OPTIONS,
);
server.addService(definition[KVSTORE_SERVICE] as grpc.ServiceDefinition, {
  Get(call: grpc.ServerUnaryCall<KeyValue, unknown>, callback: grpc.sendUnaryData<unknown>) {
    const value = data.get(call.request.key);
    callback(null, { found: value !== undefined, value: value ?? "" });
  },
  Set(call: grpc.ServerUnaryCall<KeyValue, unknown>, callback: grpc.sendUnaryData<unknown>) {
    data.set(call.request.key, call.request.value);
    callback(null, { success: true });
  },
});
const port = await listen(server, address, "bare server");
await Deno.stderr.write(new TextEncoder().encode(`Listening on ${address.host}:${port}\n`));
