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

import { Buffer } from "node:buffer";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
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
