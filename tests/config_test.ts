/**
 * Settings from the environment and a config file, against real start-ups of a node and
 * of a router: precedence flag > env > file > default, clear refusals that name the
 * setting and its source, warnings about names the process does not know, and a node's
 * and a router's variables kept apart.
 */

import assert from "node:assert/strict";
import { KvClient, KvClientError } from "../src/client/client.ts";
import { runKvstore, ServerProcess, spawnKvstore, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Whether the node takes a value of `bytes` bytes. */
async function accepts(client: KvClient, bytes: number): Promise<boolean> {
  try {
    await client.set("k", "x".repeat(bytes));
    return true;
  } catch (error) {
    if (error instanceof KvClientError && error.codeName === "RESOURCE_EXHAUSTED") return false;
    throw error;
  }
}

Deno.test("smoke: a config file, the environment and flags combine, flags first", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-config-" });
  try {
    const file = `${dir}/kvstore.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({ "max-value-bytes": 100, "log-format": "json", "max-key-bytes": "50" }),
    );

    await using fromFile = await startServer({ args: ["--config", file] });
    using fileClient = new KvClient(fromFile.address);
    assert.deepEqual([await accepts(fileClient, 100), await accepts(fileClient, 101)], [true, false]);
    const listening = fromFile.stderr.split("\n").find((line) => line.includes("Listening on"))!;
    assert.equal(JSON.parse(listening).config, file, "the file's log-format applies: lines are JSON");
    assert.equal((await fileClient.info()).config_file, file);

    await using fromEnv = await startServer({ args: ["--config", file], env: { KVSTORE_MAX_VALUE_BYTES: "20" } });
    using envClient = new KvClient(fromEnv.address);
    assert.deepEqual([await accepts(envClient, 20), await accepts(envClient, 21)], [true, false]);

    await using fromFlag = await startServer({
      args: ["--max-value-bytes", "30"],
      env: { KVSTORE_CONFIG: file, KVSTORE_MAX_VALUE_BYTES: "20" },
    });
    using flagClient = new KvClient(fromFlag.address);
    assert.deepEqual([await accepts(flagClient, 30), await accepts(flagClient, 31)], [true, false]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an invalid value from any source stops start-up, naming the setting and its source", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-config-" });
  try {
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify({ "max-value-bytes": "lots" }));
    await Deno.writeTextFile(`${dir}/broken.json`, "{ not json");
    const cases: [string[], Record<string, string>, RegExp][] = [
      [[], { KVSTORE_MAX_VALUE_BYTES: "huge" }, /^kvstore: Invalid KVSTORE_MAX_VALUE_BYTES "huge": expected a size/],
      [[], { KVSTORE_LOG_LEVEL: "loud" }, /^kvstore: Invalid KVSTORE_LOG_LEVEL "loud": expected one of debug, info/],
      [["--config", `${dir}/bad.json`], {}, /^kvstore: Invalid max-value-bytes \(from .*bad\.json\) "lots"/],
      [["--config", `${dir}/broken.json`], {}, /^kvstore: Cannot read config file .*broken\.json: /],
      [["--config", `${dir}/missing.json`], {}, /^kvstore: Cannot read config file ".*missing\.json" \(--config\)/],
      [[], { KVSTORE_REPLICA: "perhaps" }, /^kvstore: Invalid KVSTORE_REPLICA "perhaps": expected true or false/],
      // A path that is no config file is refused at a bound, not read until memory runs out.
      [["--config", "/dev/zero"], {}, /^kvstore: Cannot read config file "\/dev\/zero" \(--config\): .* larger than/],
    ];
    for (const [args, env, message] of cases) {
      const result = await runKvstore(["--address", "127.0.0.1:0", "--data-dir", dir, ...args], { env });
      assert.equal(result.code, 2, `${JSON.stringify(env)} ${args}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr.trim(), message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("unknown KVSTORE_ variables and config keys are logged as warnings", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-config-" });
  try {
    await Deno.writeTextFile(`${dir}/kvstore.json`, JSON.stringify({ "max-valu-bytes": "1kb" }));
    await using server = await startServer({
      args: ["--config", `${dir}/kvstore.json`],
      // A router's variables on the same machine are not the node's to read or warn about.
      env: { KVSTORE_MAX_VALUE_BYTE: "1kb", KVSTORE_ROUTER_ADDRESS: "127.0.0.1:1", KVSTORE_ROUTER_ADRESS: "x" },
    });
    assert.doesNotMatch(server.stderr, /KVSTORE_ROUTER_/);
    assert.match(
      server.stderr,
      /WARN {2}config: Ignoring unknown environment variable KVSTORE_MAX_VALUE_BYTE \(did you mean KVSTORE_MAX_VALUE_BYTES\?\)/,
    );
    assert.match(
      server.stderr,
      /WARN {2}config: Ignoring unknown setting "max-valu-bytes" in .*kvstore\.json \(did you mean max-value-bytes\?\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("with --log-format json, the line saying why the node cannot start is JSON too", opts, async () => {
  await using holder = await startServer();
  const dataDir = await Deno.makeTempDir({ prefix: "kvstore-config-" });
  try {
    const result = await runKvstore(["--address", holder.address, "--data-dir", dataDir, "--log-format", "json"]);
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split("\n").map((line) => JSON.parse(line));
    const last = lines.at(-1);
    assert.equal(last.level, "error");
    assert.equal(last.component, "server");
    assert.match(last.msg, /^Cannot listen on 127\.0\.0\.1:\d+: the address is already in use/);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a router combines a config file, KVSTORE_ROUTER_* and flags, flags first", opts, async () => {
  await using shard = await startServer();
  const dir = await Deno.makeTempDir({ prefix: "kvstore-config-" });
  try {
    const file = `${dir}/router.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        shards: [shard.address],
        vnodes: 64,
        "max-value-bytes": 100,
        "log-format": "json",
        "data-dir": `${dir}/from-file`,
        shard: "typo",
      }),
    );
    const env = {
      KVSTORE_ROUTER_CONFIG: file,
      // Port 1 cannot be bound: the router starts only if the flag wins.
      KVSTORE_ROUTER_ADDRESS: "127.0.0.1:1",
      KVSTORE_ROUTER_MAX_VALUE_BYTES: "50",
      KVSTORE_ROUTER_DATA_DIR: `${dir}/from-env`,
      KVSTORE_ROUTER_LOG_LEVL: "debug",
      // A node's variables on the same machine do not move the router.
      KVSTORE_ADDRESS: "127.0.0.1:1",
      KVSTORE_MAX_VALUE_BYTES: "10",
    };
    const child = spawnKvstore(["router", "--address", "127.0.0.1:0"], { env });
    await using router = new ServerProcess(child, `${dir}/from-env`, false);
    router.address = (await router.waitForLog(/Listening on ([^\s"]+:\d+)/))[1];
    const listening = JSON.parse(router.stderr.split("\n").find((line) => line.includes("Listening on"))!);
    assert.equal(listening.config, file, "the file's log-format applies: lines are JSON");
    assert.equal(listening.vnodes, 64, "the file beats the default");
    assert.equal(listening.dataDir, `${dir}/from-env`, "the environment beats the file");
    await Deno.stat(`${dir}/from-env/kvstore-cluster.json`);

    using client = new KvClient(router.address);
    assert.deepEqual([await accepts(client, 50), await accepts(client, 51)], [true, false]);
    const info = await client.info();
    assert.equal(info.config_file, file);
    assert.equal(info.cluster?.vnodes, 64);

    const warnings = router.stderr.split("\n").filter((line) => line.includes('"level":"warn"'))
      .map((line) => JSON.parse(line).msg);
    assert.deepEqual(warnings, [
      `Ignoring unknown setting "shard" in ${file} (did you mean shards?)`,
      "Ignoring unknown environment variable KVSTORE_ROUTER_LOG_LEVL (did you mean KVSTORE_ROUTER_LOG_LEVEL?)",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an invalid router setting from any source stops it, naming the setting and its source", opts, async () => {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-config-" });
  try {
    await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify({ "read-from": "nearest" }));
    const cases: [string[], Record<string, string>, RegExp][] = [
      [[], { KVSTORE_ROUTER_VNODES: "0" }, /^kvstore router: Invalid KVSTORE_ROUTER_VNODES "0": must be from 1 to/],
      [
        ["--config", `${dir}/bad.json`],
        {},
        /^kvstore router: Invalid read-from \(from .*bad\.json\) "nearest": expected one of master, replica$/,
      ],
      [
        [],
        { KVSTORE_ROUTER_CONFIG: `${dir}/missing.json` },
        /^kvstore router: Cannot read config file ".*missing\.json" \(KVSTORE_ROUTER_CONFIG\)/,
      ],
      [
        [],
        { KVSTORE_ROUTER_CONFIG: "/dev/zero" },
        /^kvstore router: Cannot read config file "\/dev\/zero" .* larger than/,
      ],
    ];
    for (const [args, env, message] of cases) {
      const result = await runKvstore(
        ["router", "--address", "127.0.0.1:0", "--data-dir", dir, "--shards", "127.0.0.1:1", ...args],
        { env },
      );
      assert.equal(result.code, 2, `${JSON.stringify(env)} ${args}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr.trim(), message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
