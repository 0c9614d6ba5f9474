import assert from "node:assert/strict";
import descriptor from "protobufjs/ext/descriptor/index.js";
import { PROTO_FILES } from "./proto.ts";
import { answerReflection, ReflectionIndex } from "./reflection.ts";

const index = new ReflectionIndex(PROTO_FILES);

interface DecodedFile {
  name: string;
  package: string;
  syntax: string;
  messageType: { name: string; field: { name: string; number: number; typeName?: string }[] }[];
  service: {
    name: string;
    method: { name: string; inputType: string; outputType: string; serverStreaming?: boolean }[];
  }[];
}

function decode(bytes: Uint8Array): DecodedFile {
  return descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(bytes), {
    defaults: true,
    arrays: true,
  }) as unknown as DecodedFile;
}

Deno.test("kvstore.proto is described with its service, methods and fully qualified types", () => {
  const file = decode(index.fileByName("kvstore.proto")!);
  assert.equal(file.name, "kvstore.proto");
  assert.equal(file.package, "kvstore");
  assert.equal(file.syntax, "proto3");
  const service = file.service.find((candidate) => candidate.name === "KeyValueStore")!;
  const get = service.method.find((method) => method.name === "Get")!;
  assert.equal(get.inputType, ".kvstore.GetRequest");
  assert.equal(get.outputType, ".kvstore.GetResponse");
  assert.equal(service.method.find((method) => method.name === "StreamReplication")!.serverStreaming, true);
  const mget = file.messageType.find((message) => message.name === "MGetResponse")!;
  assert.equal(mget.field[0].typeName, ".kvstore.GetResponse");
  const command = file.messageType.find((message) => message.name === "ReplicationCommand")!;
  assert.equal(command.field.find((field) => field.name === "type")!.typeName, ".kvstore.CommandType");
});

Deno.test("symbols resolve to their files: services, methods, messages, nested enums", () => {
  assert.equal(index.fileOfSymbol("kvstore.KeyValueStore"), "kvstore.proto");
  assert.equal(index.fileOfSymbol("kvstore.KeyValueStore.Get"), "kvstore.proto");
  assert.equal(index.fileOfSymbol(".kvstore.InfoResponse"), "kvstore.proto");
  assert.equal(index.fileOfSymbol("grpc.health.v1.Health"), "grpc/health/v1/health.proto");
  assert.equal(
    index.fileOfSymbol("grpc.health.v1.HealthCheckResponse.ServingStatus"),
    "grpc/health/v1/health.proto",
  );
  assert.equal(
    index.fileOfSymbol("grpc.reflection.v1alpha.ServerReflection"),
    "grpc/reflection/v1alpha/reflection.proto",
  );
  assert.equal(index.fileOfSymbol("kvstore.Nope"), undefined);
});

Deno.test("the health file keeps the standard names and numbers", () => {
  const file = decode(index.fileByName("grpc/health/v1/health.proto")!);
  assert.equal(file.package, "grpc.health.v1");
  const watch = file.service[0].method.find((method) => method.name === "Watch")!;
  assert.deepEqual([watch.inputType, watch.outputType, watch.serverStreaming], [
    ".grpc.health.v1.HealthCheckRequest",
    ".grpc.health.v1.HealthCheckResponse",
    true,
  ]);
});

Deno.test("answers: list services, files by symbol and name, errors for unknown names", () => {
  const services = ["kvstore.KeyValueStore", "grpc.health.v1.Health"];
  const list = answerReflection(index, services, { host: "h", message_request: "list_services", list_services: "*" });
  assert.deepEqual(list.list_services_response, {
    service: [{ name: "kvstore.KeyValueStore" }, { name: "grpc.health.v1.Health" }],
  });
  assert.equal(list.valid_host, "h");

  const bySymbol = answerReflection(index, services, {
    message_request: "file_containing_symbol",
    file_containing_symbol: "kvstore.KeyValueStore",
  }) as { file_descriptor_response: { file_descriptor_proto: Uint8Array[] } };
  assert.equal(decode(bySymbol.file_descriptor_response.file_descriptor_proto[0]).name, "kvstore.proto");

  const byName = answerReflection(index, services, {
    message_request: "file_by_filename",
    file_by_filename: "kvstore.proto",
  });
  assert.ok("file_descriptor_response" in byName);

  const missing = answerReflection(index, services, {
    message_request: "file_containing_symbol",
    file_containing_symbol: "x.Y",
  });
  assert.deepEqual(missing.error_response, { error_code: 5, error_message: 'reflection: Cannot find symbol "x.Y"' });
  const extensions = answerReflection(index, services, {
    message_request: "all_extension_numbers_of_type",
    all_extension_numbers_of_type: "kvstore.GetRequest",
  });
  assert.deepEqual(extensions.all_extension_numbers_response, {
    base_type_name: "kvstore.GetRequest",
    extension_number: [],
  });
  assert.equal((answerReflection(index, services, {}).error_response as { error_code: number }).error_code, 3);
});
