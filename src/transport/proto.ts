/**
 * The wire interface, loaded from proto/kvstore.proto without touching the disk.
 *
 * The .proto text is imported as a module, so `deno compile` and `deno bundle` carry it
 * inside the program; protobufjs parses it and proto-loader turns it into the package
 * definition grpc-js serves and calls. Options are spelled out rather than left to
 * defaults, because they decide the shape of every message in handlers and clients:
 * field names as written in the .proto, 64-bit integers as decimal strings (a JavaScript
 * number silently loses precision past 2^53), enums by name, defaults filled in.
 *
 * @module
 */

import { Buffer, isUtf8 } from "node:buffer";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import {
  findWireProblem,
  WIRE_TYPE_LENGTH_DELIMITED,
  type WireField,
  type WireSchema,
  wireTypeOf,
} from "./wire_check.ts";
import protoText from "../../proto/kvstore.proto" with { type: "text" };
import healthProtoText from "../../proto/grpc/health/v1/health.proto" with { type: "text" };
import reflectionProtoText from "../../proto/grpc/reflection/v1/reflection.proto" with { type: "text" };

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

/** The fully qualified name of the service. */
export const KVSTORE_SERVICE = "kvstore.KeyValueStore";

/** The package definition of kvstore.proto, parsed once per process. */
export function kvstoreDefinition(): protoLoader.PackageDefinition {
  return protoFileDefinition("kvstore.proto");
}

// Operations: the standard protos kvstore serves beside its own (health, reflection).

/** A .proto file the node serves, with the name reflection reports for it. */
export interface ProtoFile {
  /** The path tools know the file by, relative to an include root. */
  readonly filename: string;
  readonly text: string;
}

export const HEALTH_SERVICE = "grpc.health.v1.Health";
export const REFLECTION_V1_SERVICE = "grpc.reflection.v1.ServerReflection";
export const REFLECTION_V1ALPHA_SERVICE = "grpc.reflection.v1alpha.ServerReflection";

/**
 * Every .proto file a node serves. grpc.reflection.v1alpha is the same protocol as v1
 * under an older package name (tools from before 2023 ask for it), so its file is the v1
 * text with the package renamed rather than a second copy that could drift.
 */
export const PROTO_FILES: readonly ProtoFile[] = [
  { filename: "kvstore.proto", text: protoText },
  { filename: "grpc/health/v1/health.proto", text: healthProtoText },
  { filename: "grpc/reflection/v1/reflection.proto", text: reflectionProtoText },
  {
    filename: "grpc/reflection/v1alpha/reflection.proto",
    text: reflectionProtoText.replace("package grpc.reflection.v1;", "package grpc.reflection.v1alpha;"),
  },
];

const definitions = new Map<string, protoLoader.PackageDefinition>();

/** The package definition of one of {@linkcode PROTO_FILES}, parsed once per process,
 * with the same loader options as kvstore.proto. */
export function protoFileDefinition(filename: string): protoLoader.PackageDefinition {
  let definition = definitions.get(filename);
  if (definition === undefined) {
    const file = PROTO_FILES.find((candidate) => candidate.filename === filename);
    if (file === undefined) throw new Error(`proto: Unknown proto file ${JSON.stringify(filename)}`);
    const root = protobuf.parse(file.text, { keepCase: true }).root;
    definition = protoLoader.fromJSON(root.toJSON(), PROTO_LOADER_OPTIONS);
    checkRequestsStrictly(root, definition);
    definitions.set(filename, definition);
  }
  return definition;
}

/** The proto-loader field descriptors of a kvstore message (`"InfoResponse"`); empty for
 * a name the proto does not define. */
function fieldsOf(messageName: string): readonly { name: string; type: string; typeName: string }[] {
  const definition = kvstoreDefinition()[`kvstore.${messageName}`] as
    | { type?: { field?: { name: string; type: string; typeName: string }[] } }
    | undefined;
  return definition?.type?.field ?? [];
}

const INT64_TYPES = ["TYPE_INT64", "TYPE_UINT64", "TYPE_SINT64", "TYPE_FIXED64", "TYPE_SFIXED64"];

/** The names of the 64-bit integer fields of a kvstore message (`"InfoResponse"`), which
 * decode as decimal strings. */
export function int64FieldsOf(messageName: string): Set<string> {
  return new Set(fieldsOf(messageName).filter((field) => INT64_TYPES.includes(field.type)).map((field) => field.name));
}

/** Where a message's 64-bit integers are: its own int64 fields, and the same for each of
 * its message-typed fields (repeated or not), so JSON output can turn every one of them
 * into a number, not only the top level's. */
export interface Int64Schema {
  readonly int64: ReadonlySet<string>;
  readonly messages: ReadonlyMap<string, Int64Schema>;
}

/** The {@linkcode Int64Schema} of a kvstore message (`"InfoResponse"`). */
export function int64SchemaOf(messageName: string, seen: ReadonlySet<string> = new Set()): Int64Schema {
  const messages = new Map<string, Int64Schema>();
  for (const field of fieldsOf(messageName)) {
    // Messages are named relative to the package; a type that contains itself would
    // recurse forever, so a type already on the path is described once.
    if (field.type !== "TYPE_MESSAGE" || seen.has(field.typeName)) continue;
    messages.set(field.name, int64SchemaOf(field.typeName, new Set([...seen, messageName])));
  }
  return { int64: int64FieldsOf(messageName), messages };
}

/** The names of the int32 fields of `rpc`'s request (`"Expire"`: seconds). A number
 * outside int32 is cut to its low 32 bits on the wire, so callers check these first. */
export function int32RequestFieldsOf(rpc: string): readonly string[] {
  const service = kvstoreDefinition()[KVSTORE_SERVICE] as unknown as Record<
    string,
    { requestType?: { type?: { field?: { name: string; type: string }[] } } }
  >;
  const fields = service[rpc]?.requestType?.type?.field ?? [];
  return fields.filter((field) => field.type === "TYPE_INT32").map((field) => field.name);
}

// Strict decoding of requests (see wire_check.ts).

/** The property a request decoded from malformed bytes carries: what is wrong with them.
 * {@linkcode malformedRequestProblem} reads it. */
const MALFORMED_REQUEST = Symbol("kvstore.malformedRequest");

/** What is wrong with the bytes `request` was decoded from (invalid UTF-8 in a string
 * field, a field that runs past the end), or null when they were well formed. */
export function malformedRequestProblem(request: unknown): string | null {
  if (typeof request !== "object" || request === null) return null;
  return (request as { [MALFORMED_REQUEST]?: string })[MALFORMED_REQUEST] ?? null;
}

/**
 * Makes the request deserializers of `definition`'s services check the bytes before
 * protobufjs decodes them, for every rpc, each message of a streamed request too (Sync
 * and reflection streams come from anyone who can connect, not only from our nodes).
 * Malformed bytes do not throw, which grpc-js would answer with a bare INTERNAL "Error
 * deserializing request": the request comes back with its fields at their proto3
 * defaults and {@linkcode malformedRequestProblem} saying what is wrong, and
 * transport/grpc.ts's addService answers INVALID_ARGUMENT with that.
 */
function checkRequestsStrictly(root: protobuf.Root, definition: protoLoader.PackageDefinition): void {
  root.resolveAll();
  const schemas = new Map<protobuf.Type, WireSchema>();
  for (const service of servicesOf(root)) {
    const serviceDefinition = definition[service.fullName.slice(1)] as Record<string, { requestDeserialize: unknown }>;
    for (const method of service.methodsArray) {
      const methodDefinition = serviceDefinition?.[method.name];
      if (methodDefinition === undefined || method.resolvedRequestType === null) {
        continue;
      }
      const schema = wireSchemaOf(method.resolvedRequestType, schemas);
      const decode = methodDefinition.requestDeserialize as (bytes: Buffer) => object;
      methodDefinition.requestDeserialize = (bytes: Buffer) => {
        const problem = findWireProblem(bytes, schema, isUtf8);
        if (problem === null) return decode(bytes);
        // Not enumerable, so a handler that copies or forwards the request leaves it behind.
        return Object.defineProperty(decode(Buffer.alloc(0)), MALFORMED_REQUEST, { value: problem });
      };
    }
  }
}

/** Whether protobufjs reads `field` with its 32-bit varint reader (see wire_check.ts). */
function varint32Of(field: protobuf.Field): "int32" | "bool" | undefined {
  if (field.resolvedType instanceof protobuf.Enum) return "int32";
  if (field.type === "bool") return "bool";
  return ["int32", "uint32", "sint32"].includes(field.type) ? "int32" : undefined;
}

function servicesOf(namespace: protobuf.NamespaceBase): protobuf.Service[] {
  return namespace.nestedArray.flatMap((nested) =>
    nested instanceof protobuf.Service
      ? [nested]
      : nested instanceof protobuf.Namespace || nested instanceof protobuf.Type
      ? servicesOf(nested)
      : []
  );
}

/** The schema findWireProblem walks for `type`, built once per type (and shared, since
 * types may refer to each other). */
function wireSchemaOf(type: protobuf.Type, schemas: Map<protobuf.Type, WireSchema>): WireSchema {
  const known = schemas.get(type);
  if (known !== undefined) return known;
  const fields = new Map<number, WireField>();
  const schema: WireSchema = { name: type.fullName.slice(1), fields };
  schemas.set(type, schema);
  for (const field of type.fieldsArray) {
    const message = field.resolvedType instanceof protobuf.Type ? field.resolvedType : null;
    const wireType = wireTypeOf(field.type, message !== null);
    // A map travels as repeated entry messages; its entries are skipped unchecked (our
    // protos have no maps on requests). A repeated number may also come packed.
    const isMap = field instanceof protobuf.MapField;
    fields.set(field.id, {
      name: field.name,
      kind: isMap ? "other" : message !== null ? "message" : field.type === "string" ? "string" : "other",
      wireTypes: isMap
        ? [WIRE_TYPE_LENGTH_DELIMITED]
        : field.repeated && wireType !== WIRE_TYPE_LENGTH_DELIMITED
        ? [wireType, WIRE_TYPE_LENGTH_DELIMITED]
        : [wireType],
      message: message === null || isMap ? undefined : () => wireSchemaOf(message, schemas),
      varint32: isMap ? undefined : varint32Of(field),
      oneof: field.partOf?.name,
      singular: message !== null && !field.repeated && !isMap,
    });
  }
  return schema;
}
