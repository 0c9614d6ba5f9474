/**
 * The one place where gRPC servers and client channels are made.
 *
 * Every server and every outgoing connection (clients, replicas following a master, the
 * router's links to shards) is created here, with its options spelled out, so transport
 * security and authentication can be added once, here, for all of them. Today both
 * sides use plaintext HTTP/2 (insecure credentials), like the C++ store.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { type Address, formatAddress } from "../config/address.ts";
import { GRPC_KEEPALIVE_TIME_MS, GRPC_KEEPALIVE_TIMEOUT_MS, MESSAGE_OVERHEAD_BYTES_MAX } from "../config/limits.ts";
import { KvError } from "../errors.ts";
import { KVSTORE_SERVICE, kvstoreDefinition } from "./proto.ts";

export { grpc };

/** Bounds on what one message may carry. */
export interface TransportLimits {
  /** Largest message sent or received, in bytes. */
  readonly messageBytesMax: number;
}

/** The message bound that lets the largest allowed key and value through with room for
 * the rest of the message, so an oversized value reaches our own check (and its clear
 * message) rather than the transport's. */
export function transportLimitsFor(keyBytesMax: number, valueBytesMax: number): TransportLimits {
  return { messageBytesMax: keyBytesMax + valueBytesMax + MESSAGE_OVERHEAD_BYTES_MAX };
}

/** A generous bound for tools that do not know the server's limits (the CLI). */
export const CLIENT_TRANSPORT_LIMITS: TransportLimits = { messageBytesMax: 512 * 1024 * 1024 };

/** HTTP/2 session memory, in MiB, allowed per connection; a message being received is
 * buffered whole, so this must exceed the largest message or nghttp2 resets the stream. */
function sessionMemoryMib(limits: TransportLimits): number {
  return Math.ceil((2 * limits.messageBytesMax) / (1024 * 1024)) + 16;
}

function channelOptions(limits: TransportLimits): grpc.ChannelOptions {
  return {
    "grpc.max_receive_message_length": limits.messageBytesMax,
    "grpc.max_send_message_length": limits.messageBytesMax,
    "grpc.keepalive_time_ms": GRPC_KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": GRPC_KEEPALIVE_TIMEOUT_MS,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc-node.max_session_memory": sessionMemoryMib(limits),
  };
}

/** A gRPC server with kvstore's transport options. Add services, then {@linkcode listen}. */
export function createServer(limits: TransportLimits): grpc.Server {
  return new grpc.Server({
    ...channelOptions(limits),
    // Clients may ping as often as our own clients do; a stricter server would answer
    // an eager client's pings with GOAWAY "too_many_pings".
    "grpc.http2.min_ping_interval_without_data_ms": 5000,
    "grpc.max_concurrent_streams": 1000,
  });
}

/** Binds `server` to `address` and resolves with the bound port (useful when the port
 * asked for is 0). Refuses with a message a person can act on. */
export function listen(server: grpc.Server, address: Address): Promise<number> {
  const target = formatAddress(address);
  return new Promise((resolve, reject) => {
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error === null) return resolve(port);
      const detail = error.message.includes("EADDRINUSE")
        ? "the address is already in use (is another kvstore running? choose another --address)"
        : error.message.includes("EADDRNOTAVAIL") || error.message.includes("ENOTFOUND")
        ? "no network interface has that address"
        : error.message.includes("EACCES")
        ? "permission denied (ports below 1024 need privileges)"
        : error.message;
      reject(new KvError("UNAVAILABLE", `server: Cannot listen on ${target}: ${detail}`));
    });
  });
}

/** The service definition of kvstore.KeyValueStore, for addService. */
export function kvstoreServiceDefinition(): grpc.ServiceDefinition {
  const definition = kvstoreDefinition()[KVSTORE_SERVICE];
  return definition as grpc.ServiceDefinition;
}

/** How fast a channel retries a lost connection: the first pause and the cap, in ms. */
export interface ReconnectBackoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** A client for kvstore.KeyValueStore at `address` ("host:port"). `reconnect` tightens
 * the reconnect backoff (the router's links to shards use it, so a shard that comes
 * back is used again within a second rather than grpc-js's cap of two minutes). */
export function createKvstoreClient(
  address: string,
  limits: TransportLimits,
  reconnect?: ReconnectBackoff,
): grpc.Client {
  const ServiceClient = grpc.makeGenericClientConstructor(kvstoreServiceDefinition(), "KeyValueStore");
  const options: grpc.ChannelOptions = { ...channelOptions(limits) };
  if (reconnect !== undefined) {
    options["grpc.initial_reconnect_backoff_ms"] = reconnect.initialMs;
    options["grpc.max_reconnect_backoff_ms"] = reconnect.maxMs;
  }
  return new ServiceClient(address, grpc.credentials.createInsecure(), options);
}
