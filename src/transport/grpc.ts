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
import {
  GRPC_KEEPALIVE_TIME_MS,
  GRPC_KEEPALIVE_TIMEOUT_MS,
  GRPC_RECONNECT_BACKOFF_INITIAL_MS,
  GRPC_RECONNECT_BACKOFF_MAX_MS,
  messageBytesMaxFor,
} from "../config/limits.ts";
import { KvError } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import {
  HEALTH_SERVICE,
  KVSTORE_SERVICE,
  kvstoreDefinition,
  malformedRequestProblem,
  PROTO_FILES,
  protoFileDefinition,
  REFLECTION_V1_SERVICE,
  REFLECTION_V1ALPHA_SERVICE,
} from "./proto.ts";

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
  return { messageBytesMax: messageBytesMaxFor(keyBytesMax, valueBytesMax) };
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
    // A broken channel reconnects after 1 s, then backs off up to 5 s (grpc's default
    // ceiling is 120 s, far too long for a client failing over or a replica rejoining).
    "grpc.initial_reconnect_backoff_ms": GRPC_RECONNECT_BACKOFF_INITIAL_MS,
    "grpc.max_reconnect_backoff_ms": GRPC_RECONNECT_BACKOFF_MAX_MS,
  };
}

/** Wraps a service's handlers before they are added (metrics observe each call's status
 * and time this way). */
export type HandlerInstrument = (
  definition: grpc.ServiceDefinition,
  handlers: grpc.UntypedServiceImplementation,
) => grpc.UntypedServiceImplementation;

/** What a server may be given beside its limits. */
export interface ServerOptions {
  /** Applied by {@linkcode addService} to every service added to the server. It wraps
   * handlers rather than installing a grpc-js interceptor, which allocates an
   * intercepting call and its listeners for every call: measured, several times the cost
   * of the handler itself on a cache read. */
  readonly instrument?: HandlerInstrument;
}

const serverInstruments = new WeakMap<grpc.Server, HandlerInstrument>();

/** A gRPC server with kvstore's transport options. Add services with
 * {@linkcode addService}, then {@linkcode listen}. */
export function createServer(limits: TransportLimits, options: ServerOptions = {}): grpc.Server {
  const server = new grpc.Server({
    ...channelOptions(limits),
    // Clients may ping as often as our own clients do; a stricter server would answer
    // an eager client's pings with GOAWAY "too_many_pings".
    "grpc.http2.min_ping_interval_without_data_ms": 5000,
    "grpc.max_concurrent_streams": 1000,
    // Channelz keeps the list of open connections that the connections metric counts.
    "grpc.enable_channelz": 1,
  });
  if (options.instrument !== undefined) serverInstruments.set(server, options.instrument);
  return server;
}

/** Binds `server` to `address` and resolves with the bound port (useful when the port
 * asked for is 0). Refuses with a message a person can act on, prefixed with the
 * caller's `subsystem` ("server" for a node, "router"). With `connectionsMax`,
 * connections past that many open at once are closed as soon as they are accepted. */
export function listen(
  server: grpc.Server,
  address: Address,
  subsystem: string,
  connectionsMax?: number,
): Promise<number> {
  const target = formatAddress(address);
  return new Promise((resolve, reject) => {
    server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (error, port) => {
      if (error === null) {
        try {
          if (connectionsMax !== undefined) limitConnections(server, connectionsMax);
        } catch (limitError) {
          server.forceShutdown();
          return reject(limitError);
        }
        return resolve(port);
      }
      // Deno reports an address of no local interface as EINVAL where Node says
      // EADDRNOTAVAIL; grpc-js reports a host name that does not resolve in words.
      const detail = error.message.includes("EADDRINUSE")
        ? "the address is already in use (is another kvstore running? choose another --address)"
        : /EADDRNOTAVAIL|EINVAL/.test(error.message)
        ? "no network interface of this machine has that address (0.0.0.0 listens on all of them)"
        : /ENOTFOUND|Name resolution failed/.test(error.message)
        ? "the host name does not resolve to an address of this machine"
        : error.message.includes("EACCES")
        ? "permission denied (ports below 1024 need privileges)"
        : error.message;
      reject(new KvError("UNAVAILABLE", `${subsystem}: Cannot listen on ${target}: ${detail}`));
    });
  });
}

/**
 * Sets node:net's maxConnections on the listeners of `server`. grpc-js offers no option
 * for it, so this reaches its listeners through the `http2Servers` map it keeps (a
 * TypeScript-private field of grpc-js 1.14, which deno.lock pins); a grpc-js without it
 * fails here, at start-up, rather than leaving a node unbounded.
 */
function limitConnections(server: grpc.Server, connectionsMax: number): void {
  const listeners = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(listeners instanceof Map)) {
    throw new Error("transport: Cannot limit connections: this grpc-js keeps no http2Servers map");
  }
  for (const listener of listeners.keys()) (listener as { maxConnections: number }).maxConnections = connectionsMax;
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

/** What a client channel may be given beside its limits. */
export interface ClientOptions {
  /** Open a connection of its own instead of sharing one with every other client of the
   * same address in this process (grpc-js pools connections by default). A benchmark's
   * clients each want their own, as redis-benchmark's do. */
  readonly ownConnection?: boolean;
  /** A reconnect backoff other than the default (GRPC_RECONNECT_BACKOFF_*): the router's
   * links to shards retry sooner, so a shard that comes back is used again within a
   * second. */
  readonly reconnect?: ReconnectBackoff;
}

/** A client for kvstore.KeyValueStore at `address` ("host:port"). */
export function createKvstoreClient(
  address: string,
  limits: TransportLimits,
  options: ClientOptions = {},
): grpc.Client {
  return createServiceClient(address, kvstoreServiceDefinition(), limits, options);
}

/** A client for any service definition at `address` (health checks, reflection). */
export function createServiceClient(
  address: string,
  definition: grpc.ServiceDefinition,
  limits: TransportLimits,
  options: ClientOptions = {},
): grpc.Client {
  const ServiceClient = grpc.makeGenericClientConstructor(definition, "Service");
  return new ServiceClient(address, grpc.credentials.createInsecure(), {
    ...channelOptions(limits),
    ...(options.ownConnection === true ? { "grpc.use_local_subchannel_pool": 1 } : {}),
    ...(options.reconnect === undefined ? {} : {
      "grpc.initial_reconnect_backoff_ms": options.reconnect.initialMs,
      "grpc.max_reconnect_backoff_ms": options.reconnect.maxMs,
    }),
  });
}

// Operations: services beside kvstore's own, and what the server can say about itself.

const servedServices = new WeakMap<grpc.Server, string[]>();

/** Adds a service to `server` and remembers its name, so reflection lists it. */
export function addService(
  server: grpc.Server,
  definition: grpc.ServiceDefinition,
  handlers: grpc.UntypedServiceImplementation,
): void {
  const instrument = serverInstruments.get(server);
  const checked = refuseMalformedRequests(definition, handlers);
  server.addService(definition, instrument === undefined ? checked : instrument(definition, checked));
  const firstPath = Object.values(definition)[0]?.path ?? "";
  const name = firstPath.split("/")[1];
  if (name === undefined || name === "") return;
  const names = servedServices.get(server) ?? [];
  if (!names.includes(name)) names.push(name);
  servedServices.set(server, names);
}

/**
 * `handlers` wrapped so that a call whose request bytes were malformed (invalid UTF-8 in
 * a string field, a field running past the end: see wire_check.ts) is answered
 * INVALID_ARGUMENT with what is wrong, and never reaches the handler. On a streamed
 * request, the first malformed message ends the call so, and neither it nor any later
 * one reaches the handler.
 */
function refuseMalformedRequests(
  definition: grpc.ServiceDefinition,
  handlers: grpc.UntypedServiceImplementation,
): grpc.UntypedServiceImplementation {
  const checked: grpc.UntypedServiceImplementation = {};
  for (const [rpc, handler] of Object.entries(handlers)) {
    const method = definition[rpc];
    if (method === undefined) {
      checked[rpc] = handler;
      continue;
    }
    const refusal = (problem: string): Partial<grpc.StatusObject> => ({
      code: grpc.status.INVALID_ARGUMENT,
      details: `transport: Cannot decode the ${rpc} request: ${problem}`,
    });
    if (method.requestStream) {
      // A client-streaming rpc answers through a callback that the handler holds too; none
      // exists, and one added would need its refusal made here first.
      if (!method.responseStream) throw new Error(`transport: Cannot check the ${rpc} requests: not a bidi stream`);
      checked[rpc] = ((call: grpc.ServerDuplexStream<unknown, unknown>) => {
        refuseMalformedMessages(call, refusal);
        (handler as (call: unknown) => void)(call);
      }) as grpc.UntypedHandleCall;
      continue;
    }
    checked[rpc] = method.responseStream
      ? ((call: grpc.ServerWritableStream<unknown, unknown>) => {
        const problem = malformedRequestProblem(call.request);
        if (problem !== null) return void call.emit("error", refusal(problem));
        (handler as (call: unknown) => void)(call);
      }) as grpc.UntypedHandleCall
      : ((call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        const problem = malformedRequestProblem(call.request);
        if (problem !== null) return callback(refusal(problem));
        (handler as (call: unknown, callback: unknown) => void)(call, callback);
      }) as grpc.UntypedHandleCall;
  }
  return checked;
}

/**
 * Makes the first malformed message of a streamed request end `call` with the status
 * `refusal` gives, instead of reaching the handler. grpc-js hands each decoded message
 * to the call's `push` (it is a Node object-mode stream); the check goes there, before
 * any `data` listener of the handler's hears of it.
 */
function refuseMalformedMessages(
  call: grpc.ServerDuplexStream<unknown, unknown>,
  refusal: (problem: string) => Partial<grpc.StatusObject>,
): void {
  const push = call.push.bind(call);
  let refused = false;
  call.push = (message: unknown, encoding?: BufferEncoding): boolean => {
    if (refused) return false;
    const problem = message === null ? null : malformedRequestProblem(message);
    if (problem === null) return push(message, encoding);
    refused = true;
    // grpc-js ends a server stream with the status of an emitted error.
    call.emit("error", refusal(problem));
    return false;
  };
}

/** The full names of the services added to `server` with {@linkcode addService}. */
export function serviceNames(server: grpc.Server): readonly string[] {
  return servedServices.get(server) ?? [];
}

/** The definition of grpc.health.v1.Health. */
export function healthServiceDefinition(): grpc.ServiceDefinition {
  return protoFileDefinition("grpc/health/v1/health.proto")[HEALTH_SERVICE] as grpc.ServiceDefinition;
}

/** The definitions of grpc.reflection.v1.ServerReflection and its v1alpha twin. */
export function reflectionServiceDefinitions(): grpc.ServiceDefinition[] {
  return [
    protoFileDefinition("grpc/reflection/v1/reflection.proto")[REFLECTION_V1_SERVICE] as grpc.ServiceDefinition,
    protoFileDefinition(
      "grpc/reflection/v1alpha/reflection.proto",
    )[REFLECTION_V1ALPHA_SERVICE] as grpc.ServiceDefinition,
  ];
}

export { PROTO_FILES };

/** Client connections open on `server` now, from grpc-js's channelz registry (the one
 * public place grpc-js keeps them). Pages through the list; bounded by the connections
 * themselves. */
export function countConnections(server: grpc.Server): number {
  const handlers = grpc.getChannelzHandlers();
  const serverId = server.getChannelzRef().id;
  let count = 0;
  let start = 0;
  for (;;) {
    let page: { socket_ref: { socket_id: number | string }[]; end: boolean } | undefined;
    handlers.GetServerSockets(
      { request: { server_id: String(serverId), start_socket_id: String(start), max_results: "1000" } } as never,
      ((error: unknown, response: typeof page) => {
        if (error === null) page = response;
      }) as never,
    );
    if (page === undefined) return count;
    count += page.socket_ref.length;
    if (page.end || page.socket_ref.length === 0) return count;
    start = Number(page.socket_ref[page.socket_ref.length - 1].socket_id) + 1;
  }
}

/** Sends grpc-js's own diagnostics (it prints to the console by default) through
 * kvstore's logger, so every line the process writes about itself has one format.
 * grpc-js reports at its ERROR verbosity unless GRPC_VERBOSITY says otherwise. */
export function routeGrpcLogs(logger: Logger): void {
  grpc.setLogger({
    error: (...parts: unknown[]) => {
      const line = parts.map(String).join(" ").trim();
      // A failed bind is reported by listen() with the reason and what to do; grpc-js's
      // own line about it would only precede that one with less.
      if (line.includes("No address added out of total")) return;
      logger.warn(line);
    },
  });
}
