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
