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

/** The text of proto/kvstore.proto. */
export const KVSTORE_PROTO_TEXT: string = protoText;

let cached: protoLoader.PackageDefinition | undefined;

/** The package definition of kvstore.proto, parsed once per process. */
export function kvstoreDefinition(): protoLoader.PackageDefinition {
  if (cached === undefined) {
    const root = protobuf.parse(protoText, { keepCase: true }).root;
    cached = protoLoader.fromJSON(root.toJSON(), PROTO_LOADER_OPTIONS);
  }
  return cached;
}
