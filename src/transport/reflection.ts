/**
 * gRPC server reflection (grpc.reflection.v1 and v1alpha), so grpcurl and similar tools
 * list and describe kvstore's services without its .proto files:
 *
 * ```sh
 * grpcurl -plaintext localhost:50051 list
 * grpcurl -plaintext localhost:50051 describe kvstore.KeyValueStore
 * grpcurl -plaintext -d '{"key":"k"}' localhost:50051 kvstore.KeyValueStore/Get
 * ```
 *
 * ## What goes over the wire
 *
 * The protocol is one bidirectional stream: each ServerReflectionRequest is answered by
 * one ServerReflectionResponse, in order, echoing the request. Files travel as serialized
 * `google.protobuf.FileDescriptorProto` messages (opaque bytes in the reflection proto).
 * They are built here from the same .proto texts the node serves (proto.ts's
 * PROTO_FILES), once per process: protobufjs parses each text, its descriptor extension
 * turns it into a FileDescriptorProto named as in PROTO_FILES ("kvstore.proto",
 * "grpc/health/v1/health.proto", ...), and every type reference is rewritten fully
 * qualified (".kvstore.GetRequest"), as protoc writes them, because some tools do not
 * resolve relative names. None of the files imports another, so a file's answer never
 * needs dependencies.
 *
 * `list_services` answers with the services registered on the server through
 * transport/grpc.ts's addService (kvstore.KeyValueStore, grpc.health.v1.Health and the
 * two reflection services). Extensions do not exist in these protos: extension queries
 * about a known type answer with an empty list, anything unknown with NOT_FOUND.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor/index.js";
import type * as grpc from "@grpc/grpc-js";
import type { ProtoFile } from "./proto.ts";

/** gRPC status numbers used in ErrorResponse. */
const STATUS_NOT_FOUND = 5;
const STATUS_INVALID_ARGUMENT = 3;

/** The files and symbols reflection can describe. Pure: built from .proto texts. */
export class ReflectionIndex {
  /** Serialized FileDescriptorProto by file name. */
  readonly #files = new Map<string, Uint8Array>();
  /** The file defining each fully qualified symbol (no leading dot). */
  readonly #symbols = new Map<string, string>();

  constructor(files: readonly ProtoFile[]) {
    for (const file of files) this.#add(file);
  }

  /** The serialized FileDescriptorProto of `filename`, or undefined. */
  fileByName(filename: string): Uint8Array | undefined {
    return this.#files.get(filename);
  }

  /** The file that defines `symbol` (package.Service, package.Service.Method,
   * package.Message, package.Message.Nested, package.Enum), or undefined. */
  fileOfSymbol(symbol: string): string | undefined {
    return this.#symbols.get(symbol.replace(/^\./, ""));
  }

  /** Every symbol known, for tests and error messages. */
  symbols(): string[] {
    return [...this.#symbols.keys()];
  }

  #add(file: ProtoFile): void {
    const root = protobuf.parse(file.text, { keepCase: true }).root;
    root.resolveAll();
    forEachNested(root, (object) => {
      if (
        object instanceof protobuf.Namespace && !(object instanceof protobuf.Type) &&
        !(object instanceof protobuf.Service)
      ) {
        object.filename = file.filename;
      }
      if (object instanceof protobuf.Type || object instanceof protobuf.Enum || object instanceof protobuf.Service) {
        this.#symbols.set(object.fullName.slice(1), file.filename);
      }
      if (object instanceof protobuf.Service) {
        for (const method of object.methodsArray) this.#symbols.set(method.fullName.slice(1), file.filename);
      }
    });
    const set = (root as unknown as { toDescriptor(edition: string): { file: FileDescriptor[] } }).toDescriptor(
      "proto3",
    );
    for (const fileDescriptor of set.file) {
      fileDescriptor.name = file.filename;
      const scope = root.lookup(fileDescriptor.package ?? "");
      if (scope instanceof protobuf.Namespace) {
        for (const message of fileDescriptor.messageType ?? []) qualifyMessage(message, scope);
        for (const service of fileDescriptor.service ?? []) qualifyService(service, scope);
      }
      this.#files.set(file.filename, descriptor.FileDescriptorProto.encode(fileDescriptor).finish());
    }
  }
}

/** The parts of descriptor.proto's messages that qualifying touches. */
interface FileDescriptor {
  name?: string;
  package?: string;
  messageType?: MessageDescriptor[];
  service?: ServiceDescriptor[];
}

interface MessageDescriptor {
  name: string;
  field?: { name: string; typeName?: string }[];
  nestedType?: MessageDescriptor[];
}

interface ServiceDescriptor {
  name: string;
  method?: { name: string; inputType?: string; outputType?: string }[];
}

/** Rewrites every type reference of `message` (and its nested messages) to its fully
 * qualified name, looked up in the parsed proto where `scope` defines it. */
function qualifyMessage(message: MessageDescriptor, scope: protobuf.Namespace): void {
  const type = scope.lookup(message.name);
  if (!(type instanceof protobuf.Type)) return;
  for (const fieldDescriptor of message.field ?? []) {
    const field = type.fields[fieldDescriptor.name];
    if (field === undefined) continue;
    if (field.map) {
      // protobufjs names a map's entry type after the field; it is nested in this type.
      fieldDescriptor.typeName = `${type.fullName}.${fieldDescriptor.typeName}`;
    } else if (field.resolvedType !== null) {
      fieldDescriptor.typeName = field.resolvedType.fullName;
    }
  }
  for (const nested of message.nestedType ?? []) {
    const mapField = type.fieldsArray.find((field) =>
      field.map && `${field.name[0].toUpperCase()}${field.name.slice(1)}` === nested.name
    );
    if (mapField !== undefined) {
      const value = nested.field?.find((field) => field.name === "value");
      if (value !== undefined && mapField.resolvedType !== null) value.typeName = mapField.resolvedType.fullName;
      continue;
    }
    qualifyMessage(nested, type);
  }
}

function qualifyService(service: ServiceDescriptor, scope: protobuf.Namespace): void {
  const definition = scope.lookup(service.name);
  if (!(definition instanceof protobuf.Service)) return;
  for (const method of service.method ?? []) {
    const parsed = definition.methods[method.name];
    if (parsed?.resolvedRequestType) method.inputType = parsed.resolvedRequestType.fullName;
    if (parsed?.resolvedResponseType) method.outputType = parsed.resolvedResponseType.fullName;
  }
}

function forEachNested(namespace: protobuf.NamespaceBase, visit: (object: protobuf.ReflectionObject) => void): void {
  for (const object of namespace.nestedArray) {
    visit(object);
    if (object instanceof protobuf.Namespace || object instanceof protobuf.Type || object instanceof protobuf.Service) {
      forEachNested(object as protobuf.NamespaceBase, visit);
    }
  }
}

// ---------------------------------------------------------------------------------------
// The protocol: one answer per request.

/** A ServerReflectionRequest as decoded (keepCase, oneofs: the set field is named in
 * `message_request`). */
export interface ReflectionRequest {
  host?: string;
  message_request?: string;
  file_by_filename?: string;
  file_containing_symbol?: string;
  file_containing_extension?: { containing_type?: string; extension_number?: number };
  all_extension_numbers_of_type?: string;
  list_services?: string;
}

/** The answer to one request, ready for the ServerReflectionResponse serializer. */
export function answerReflection(
  index: ReflectionIndex,
  services: readonly string[],
  request: ReflectionRequest,
): Record<string, unknown> {
  const base = { valid_host: request.host ?? "", original_request: request };
  const notFound = (what: string) => ({
    ...base,
    error_response: { error_code: STATUS_NOT_FOUND, error_message: `reflection: Cannot find ${what}` },
  });
  const files = (filename: string) => ({
    ...base,
    file_descriptor_response: { file_descriptor_proto: [Buffer.from(index.fileByName(filename)!)] },
  });
  switch (request.message_request) {
    case "list_services":
      return { ...base, list_services_response: { service: services.map((name) => ({ name })) } };
    case "file_by_filename": {
      const name = request.file_by_filename ?? "";
      return index.fileByName(name) === undefined ? notFound(`file ${JSON.stringify(name)}`) : files(name);
    }
    case "file_containing_symbol": {
      const symbol = request.file_containing_symbol ?? "";
      const filename = index.fileOfSymbol(symbol);
      return filename === undefined ? notFound(`symbol ${JSON.stringify(symbol)}`) : files(filename);
    }
    case "all_extension_numbers_of_type": {
      const type = request.all_extension_numbers_of_type ?? "";
      if (index.fileOfSymbol(type) === undefined) return notFound(`type ${JSON.stringify(type)}`);
      return { ...base, all_extension_numbers_response: { base_type_name: type, extension_number: [] } };
    }
    case "file_containing_extension": {
      const extension = request.file_containing_extension ?? {};
      return notFound(
        `extension ${extension.extension_number ?? 0} of ${JSON.stringify(extension.containing_type ?? "")}: ` +
          "kvstore's protos define no extensions",
      );
    }
    default:
      return {
        ...base,
        error_response: {
          error_code: STATUS_INVALID_ARGUMENT,
          error_message: "reflection: Cannot answer an empty request: set one of the message_request fields",
        },
      };
  }
}

/** The grpc-js handler of ServerReflectionInfo. It stops reading while the client is
 * not reading its answers, so a client that only writes cannot make the server buffer
 * without bound. */
export function reflectionHandler(
  index: ReflectionIndex,
  services: () => readonly string[],
): grpc.handleBidiStreamingCall<ReflectionRequest, Record<string, unknown>> {
  return (call) => {
    call.on("data", (request: ReflectionRequest) => {
      if (!call.write(answerReflection(index, services(), request))) {
        call.pause();
        call.once("drain", () => call.resume());
      }
    });
    call.on("end", () => call.end());
    call.on("error", () => {/* The client went away; nothing to clean up. */});
  };
}
