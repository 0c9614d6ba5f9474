/**
 * gRPC tools for integration tests, standing in for grpcurl and grpc-health-probe: a
 * reflection client that lists services and fetches file descriptors the way grpcurl
 * does, a dynamic client built from those descriptors alone (no .proto file), and a way
 * to find a node's metrics endpoint.
 *
 * @module
 */

import * as protoLoader from "@grpc/proto-loader";
import { Buffer } from "node:buffer";
import {
  CLIENT_TRANSPORT_LIMITS,
  createServiceClient,
  type grpc,
  reflectionServiceDefinitions,
} from "../../src/transport/grpc.ts";
import type { ServerProcess } from "./server_process.ts";

/** One reflection stream: requests are answered in order. When the stream fails or
 * ends, every request waiting (and every later one) rejects, so a test fails rather
 * than waits forever. */
export class ReflectionClient {
  #client: grpc.Client;
  #call: grpc.ClientDuplexStream<object, Record<string, unknown>>;
  #waiting: { resolve: (response: Record<string, unknown>) => void; reject: (error: Error) => void }[] = [];
  #ended: Error | undefined;

  constructor(address: string, version: "v1" | "v1alpha" = "v1") {
    const definition = reflectionServiceDefinitions()[version === "v1" ? 0 : 1];
    this.#client = createServiceClient(address, definition, CLIENT_TRANSPORT_LIMITS);
    const method = (this.#client as unknown as Record<
      string,
      (options: object) => grpc.ClientDuplexStream<object, Record<string, unknown>>
    >)
      .ServerReflectionInfo;
    this.#call = method.call(this.#client, { deadline: Date.now() + 15_000 });
    this.#call.on("data", (response) => this.#waiting.shift()?.resolve(response));
    this.#call.on("error", (error: Error) => this.#end(error));
    this.#call.on("end", () => this.#end(new Error("reflection: the server ended the stream")));
  }

  ask(request: object): Promise<Record<string, unknown>> {
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#call.write({ host: "", ...request });
    });
  }

  #end(error: Error): void {
    this.#ended ??= error;
    for (const waiting of this.#waiting.splice(0)) waiting.reject(this.#ended);
  }

  async listServices(): Promise<string[]> {
    const response = await this.ask({ list_services: "*" });
    const list = response.list_services_response as { service: { name: string }[] };
    return list.service.map((service) => service.name);
  }

  /** The serialized FileDescriptorProtos that define `symbol`. */
  async filesContaining(symbol: string): Promise<Uint8Array[]> {
    const response = await this.ask({ file_containing_symbol: symbol });
    if (response.error_response) throw new Error(JSON.stringify(response.error_response));
    return (response.file_descriptor_response as { file_descriptor_proto: Uint8Array[] }).file_descriptor_proto;
  }

  close(): void {
    this.#call.end();
    this.#client.close();
  }
}

/** A FileDescriptorSet (field 1: repeated FileDescriptorProto) from serialized files. */
export function descriptorSet(files: readonly Uint8Array[]): Buffer {
  const parts: number[] = [];
  for (const file of files) {
    parts.push(0x0a);
    let length = file.length;
    while (length >= 0x80) {
      parts.push((length & 0x7f) | 0x80);
      length >>>= 7;
    }
    parts.push(length);
    parts.push(...file);
  }
  return Buffer.from(parts);
}

/** A client for `service` built only from reflected descriptors, as grpcurl does. */
export function dynamicClient(address: string, files: readonly Uint8Array[], service: string): grpc.Client {
  const definition = protoLoader.loadFileDescriptorSetFromBuffer(descriptorSet(files), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return createServiceClient(address, definition[service] as grpc.ServiceDefinition, CLIENT_TRANSPORT_LIMITS);
}

/** Calls a unary method of a generic client. */
export function unary<T>(client: grpc.Client, method: string, request: object): Promise<T> {
  const fn = (client as unknown as Record<string, (...args: unknown[]) => void>)[method];
  return new Promise((resolve, reject) => {
    fn.call(client, request, { deadline: Date.now() + 10_000 }, (error: Error | null, response: T) => {
      if (error) reject(error);
      else resolve(response);
    });
  });
}

/** The metrics URL a node logged at start-up. */
export async function metricsUrl(server: ServerProcess): Promise<string> {
  const match = await server.waitForLog(/metrics=(http:\/\/\S+\/metrics)/);
  return match[1];
}
