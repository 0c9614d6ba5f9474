/**
 * The transport's ceiling: a grpc-js server with kvstore's transport options whose Get
 * and Set handlers answer from a plain Map. The throughput benchmark runs it beside
 * kvstore on the same core; the gap between the two is what kvstore's own work costs.
 *
 * Usage: deno run -A bench/bare_server.ts [--address 127.0.0.1:0]
 * Prints "Listening on HOST:PORT" on stderr once it serves.
 */

import { parseArgs } from "node:util";
import { parseAddress } from "../src/config/address.ts";
import { VALUE_BYTES_MAX_DEFAULT } from "../src/config/limits.ts";
import {
  createServer,
  type grpc,
  kvstoreServiceDefinition,
  listen,
  transportLimitsFor,
} from "../src/transport/grpc.ts";

interface KeyValue {
  key: string;
  value: string;
}

const { values } = parseArgs({ args: Deno.args, options: { address: { type: "string", default: "127.0.0.1:0" } } });
const address = parseAddress(values.address!, "--address");
const data = new Map<string, string>();
const server = createServer(transportLimitsFor(64 * 1024, VALUE_BYTES_MAX_DEFAULT));
server.addService(kvstoreServiceDefinition(), {
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
