/**
 * Server reflection, as grpcurl uses it: list the services, fetch the descriptors, and
 * call the store with a client built from those descriptors alone.
 */

import assert from "node:assert/strict";
import descriptor from "protobufjs/ext/descriptor/index.js";
import { dynamicClient, ReflectionClient, unary } from "./helpers/grpc_tools.ts";
import { startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("smoke: reflection lists the services and describes them well enough to call them", opts, async () => {
  await using server = await startServer();
  const reflection = new ReflectionClient(server.address);
  try {
    assert.deepEqual((await reflection.listServices()).sort(), [
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "kvstore.KeyValueStore",
    ]);
    const files = await reflection.filesContaining("kvstore.KeyValueStore");
    const file = descriptor.FileDescriptorProto.decode(files[0]) as unknown as {
      name: string;
      service: { name: string; method: { name: string }[] }[];
    };
    assert.equal(file.name, "kvstore.proto");
    const methods = file.service[0].method.map((method) => method.name);
    for (const rpc of ["Get", "Set", "Contains", "Delete", "Expire", "TTL", "Info", "MGet", "MSet", "Scan"]) {
      assert.ok(methods.includes(rpc), rpc);
    }
    const missing = await reflection.ask({ file_containing_symbol: "kvstore.Nope" });
    assert.equal((missing.error_response as { error_code: number }).error_code, 5);

    const client = dynamicClient(server.address, files, "kvstore.KeyValueStore");
    try {
      assert.deepEqual(await unary(client, "Set", { key: "reflected", value: "yes" }), { success: true });
      assert.deepEqual(await unary(client, "Get", { key: "reflected" }), { found: true, value: "yes" });
    } finally {
      client.close();
    }
  } finally {
    reflection.close();
  }
});

Deno.test("the v1alpha protocol answers too, for older tools", opts, async () => {
  await using server = await startServer();
  const reflection = new ReflectionClient(server.address, "v1alpha");
  try {
    assert.ok((await reflection.listServices()).includes("kvstore.KeyValueStore"));
    const files = await reflection.filesContaining("grpc.health.v1.Health.Check");
    assert.equal(
      (descriptor.FileDescriptorProto.decode(files[0]) as unknown as { name: string }).name,
      "grpc/health/v1/health.proto",
    );
  } finally {
    reflection.close();
  }
});

interface FileDescriptor {
  name: string;
  package: string;
  dependency: string[];
  messageType: MessageDescriptor[];
  enumType: { name: string }[];
  service: { name: string; method: MethodDescriptor[] }[];
}
interface MessageDescriptor {
  name: string;
  field: { name: string; typeName?: string }[];
  nestedType: MessageDescriptor[];
  enumType: { name: string }[];
}
interface MethodDescriptor {
  name: string;
  inputType: string;
  outputType: string;
  clientStreaming?: boolean;
  serverStreaming?: boolean;
}

Deno.test(
  "every service's file, with its dependencies, defines every type it names, fully qualified, as grpcurl needs",
  opts,
  async () => {
    await using server = await startServer();
    const reflection = new ReflectionClient(server.address);
    try {
      // As grpcurl does: the file of each service, then each dependency by name.
      const files = new Map<string, FileDescriptor>();
      const add = async (serialized: Uint8Array[]) => {
        for (const bytes of serialized) {
          const file = descriptor.FileDescriptorProto.toObject(descriptor.FileDescriptorProto.decode(bytes), {
            arrays: true,
          }) as FileDescriptor;
          if (files.has(file.name)) continue;
          files.set(file.name, file);
          for (const dependency of file.dependency) {
            const response = await reflection.ask({ file_by_filename: dependency });
            assert.ok(response.file_descriptor_response, `${file.name} depends on ${dependency}, which is served`);
            await add(
              (response.file_descriptor_response as { file_descriptor_proto: Uint8Array[] }).file_descriptor_proto,
            );
          }
        }
      };
      const services = await reflection.listServices();
      for (const service of services) await add(await reflection.filesContaining(service));

      const defined = new Set<string>();
      const define = (scope: string, message: MessageDescriptor) => {
        defined.add(`${scope}.${message.name}`);
        for (const nested of message.nestedType) define(`${scope}.${message.name}`, nested);
        for (const enumType of message.enumType) defined.add(`${scope}.${message.name}.${enumType.name}`);
      };
      for (const file of files.values()) {
        for (const message of file.messageType) define(`.${file.package}`, message);
        for (const enumType of file.enumType) defined.add(`.${file.package}.${enumType.name}`);
      }
      const streaming = new Map<string, [boolean, boolean]>();
      for (const file of files.values()) {
        const check = (message: MessageDescriptor) => {
          for (const field of message.field) {
            if (field.typeName) {
              assert.ok(defined.has(field.typeName), `${file.name}: ${field.name} -> ${field.typeName}`);
            }
          }
          message.nestedType.forEach(check);
        };
        file.messageType.forEach(check);
        for (const service of file.service) {
          for (const method of service.method) {
            for (const type of [method.inputType, method.outputType]) {
              assert.ok(defined.has(type), `${service.name}.${method.name} names ${type}`);
            }
            streaming.set(`${file.package}.${service.name}/${method.name}`, [
              method.clientStreaming === true,
              method.serverStreaming === true,
            ]);
          }
        }
      }
      assert.deepEqual(
        [...files.keys()].sort(),
        [
          "grpc/health/v1/health.proto",
          "grpc/reflection/v1/reflection.proto",
          "grpc/reflection/v1alpha/reflection.proto",
          "kvstore.proto",
        ],
      );
      assert.deepEqual(streaming.get("kvstore.KeyValueStore/Get"), [false, false]);
      assert.deepEqual(streaming.get("kvstore.KeyValueStore/StreamReplication"), [false, true]);
      assert.deepEqual(streaming.get("kvstore.KeyValueStore/Sync"), [true, true]);
      assert.deepEqual(streaming.get("grpc.health.v1.Health/Watch"), [false, true]);
      assert.deepEqual(streaming.get("grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"), [true, true]);
    } finally {
      reflection.close();
    }
  },
);
