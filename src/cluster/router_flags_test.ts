import assert from "node:assert/strict";
import { envVarName, ROUTER_ENV_PREFIX } from "../config/settings.ts";
import { UsageError } from "../config/usage_error.ts";
import { USAGE_WIDTH } from "../config/usage_text.ts";
import { parseRouterArgs, ROUTER_FLAGS, type RouterConfig, routerUsage } from "./router_flags.ts";

Deno.test("a router's defaults: port 50051, 512 vnodes, reads from masters, 1 s to connect", () => {
  const parsed = parseRouterArgs(["--shards", "127.0.0.1:7101,127.0.0.1:7102"]);
  assert.equal(parsed.help, false);
  if (parsed.help) return;
  const { config } = parsed;
  assert.deepEqual(config.address, { host: "0.0.0.0", port: 50051 });
  assert.deepEqual(config.shards?.map((spec) => spec.name), ["127.0.0.1:7101", "127.0.0.1:7102"]);
  assert.equal(config.vnodes, 512);
  assert.equal(config.readFrom, "master");
  assert.equal(config.connectTimeoutMs, 1000);
  assert.equal(config.migrationBatchKeys, 500);
  assert.equal(config.migrationPauseMs, 0);
  assert.equal(config.dataDir, ".");
  assert.equal(config.connectionsMax, 10_000);
  assert.equal(config.metricsAddress, null, "no metrics endpoint unless asked");
  const limited = parseRouterArgs(["--max-connections", "300"]);
  assert.ok(!limited.help && limited.config.connectionsMax === 300);
});

Deno.test("a restart may leave --shards out: the state file names them", () => {
  const parsed = parseRouterArgs(["--data-dir", "/var/lib/router"]);
  assert.ok(!parsed.help && parsed.config.shards === null);
});

Deno.test("router flag mistakes name the flag", () => {
  const cases: [string[], RegExp][] = [
    [["--shards", "a"], /Invalid --shards "a": expected host:port/],
    [["--vnodes", "0"], /Invalid --vnodes "0": must be from 1 to 4096/],
    [["--read-from", "nearest"], /Invalid --read-from "nearest": expected one of master, replica/],
    [["--connect-timeout-ms", "x"], /Invalid --connect-timeout-ms "x"/],
    [["--address", "127.0.0.1:9000", "--shards", "127.0.0.1:9000"], /is the router's own --address 127.0.0.1:9000/],
    [["--max-connections", "0"], /Invalid --max-connections "0": must be from 1 to 1000000/],
    [
      ["--max-value-bytes", "0"],
      /Invalid --max-value-bytes "0": must be from 1 to 536870912 bytes \(1 byte to 512mb\)/,
    ],
    [["--max-key-bytes", "0"], /Invalid --max-key-bytes "0": must be from 1 to 1048576 bytes/],
    [["--connect-timeout-ms", "0"], /Invalid --connect-timeout-ms "0": must be from 1 to 600000/],
    [["--migration-batch-keys", "0"], /Invalid --migration-batch-keys "0": must be from 1 to 10000/],
    [["--metrics-address", "9100"], /Invalid --metrics-address "9100": expected host:port/],
    [
      ["--address", "127.0.0.1:9000", "--metrics-address", "127.0.0.1:9000"],
      /--metrics-address 127\.0\.0\.1:9000 is the gRPC --address; give metrics a port of their own/,
    ],
    [["--bogus"], /Unknown flag --bogus/],
  ];
  for (const [args, message] of cases) assert.throws(() => parseRouterArgs(args), message);
  assert.match(routerUsage(), /--migration-pause-ms MS/);
  assert.match(routerUsage(), /--max-connections N +Client connections open at once[^]*?Default: 10000\./);
  for (const line of routerUsage().split("\n")) assert.ok(line.length <= USAGE_WIDTH, `${line.length}: ${line}`);
  assert.match(routerUsage(), /--metrics-address HOST:PORT +Serve Prometheus metrics at http:\/\/HOST:PORT\/metrics/);
  const metrics = parseRouterArgs(["--metrics-address", "127.0.0.1:0"]);
  assert.ok(!metrics.help);
  assert.deepEqual(metrics.config.metricsAddress, { host: "127.0.0.1", port: 0 });
});

// Settings from the environment and a config file, read by the node's code with the
// router's own prefix.

function routerSettings(args: string[], env: Record<string, string>, files: Record<string, string> = {}) {
  const parsed = parseRouterArgs(args, {
    env,
    readFile: (path) => {
      if (!(path in files)) throw new Deno.errors.NotFound(`No such file: ${path}`);
      return files[path];
    },
  });
  assert.equal(parsed.help, false);
  return parsed as { config: RouterConfig; warnings: readonly string[] };
}

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${error}`);
    return error.message;
  }
  assert.fail("expected a refusal");
}

Deno.test("every router flag but help and config can come from KVSTORE_ROUTER_* and a config file", () => {
  const settable = ROUTER_FLAGS.filter((flag) => flag.name !== "help" && flag.name !== "config");
  const env = Object.fromEntries(settable.map((flag) => [envVarName(flag.name, "KVSTORE_ROUTER_"), ""]));
  assert.deepEqual(routerSettings([], env).warnings, [], "no router flag's variable is unknown");
  assert.equal(envVarName("shards", ROUTER_ENV_PREFIX), "KVSTORE_ROUTER_SHARDS");

  const file = {
    address: "127.0.0.1:7000",
    shards: ["a=127.0.0.1:7101+127.0.0.1:7201", "127.0.0.1:7102"],
    "data-dir": "/var/lib/router",
    vnodes: 64,
    "read-from": "replica",
    "connect-timeout-ms": 250,
    "migration-batch-keys": 10,
    "migration-pause-ms": 5,
    "max-key-bytes": "1kb",
    "max-value-bytes": "2mb",
    "max-ttl-seconds": 60,
    "max-connections": 99,
    "metrics-address": "127.0.0.1:9100",
    "log-level": "debug",
    "log-format": "json",
  };
  const { config, warnings } = routerSettings(["--config", "r.json"], {}, { "r.json": JSON.stringify(file) });
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.address, { host: "127.0.0.1", port: 7000 });
  assert.deepEqual(config.shards?.map((spec) => [spec.name, spec.master, spec.replicas]), [
    ["a", "127.0.0.1:7101", ["127.0.0.1:7201"]],
    ["127.0.0.1:7102", "127.0.0.1:7102", []],
  ]);
  assert.equal(config.dataDir, "/var/lib/router");
  assert.equal(config.vnodes, 64);
  assert.equal(config.readFrom, "replica");
  assert.equal(config.connectTimeoutMs, 250);
  assert.equal(config.migrationBatchKeys, 10);
  assert.equal(config.migrationPauseMs, 5);
  assert.deepEqual(config.limits, { keyBytesMax: 1024, valueBytesMax: 2 * 1024 ** 2, ttlSecondsMax: 60 });
  assert.equal(config.connectionsMax, 99);
  assert.deepEqual(config.metricsAddress, { host: "127.0.0.1", port: 9100 });
  assert.equal(config.logLevel, "debug");
  assert.equal(config.logFormat, "json");
  assert.equal(config.configFile, "r.json");
});

Deno.test("router settings: a flag beats KVSTORE_ROUTER_*, which beats the file, which beats the default", () => {
  const files = {
    "r.json": JSON.stringify({ vnodes: 64, "read-from": "replica", "connect-timeout-ms": 250 }),
    "other.json": JSON.stringify({ vnodes: 32 }),
    "s.json": JSON.stringify({ shards: ["a:1"] }),
  };
  const env = { KVSTORE_ROUTER_CONFIG: "r.json", KVSTORE_ROUTER_VNODES: "128", KVSTORE_ROUTER_READ_FROM: "master" };
  const { config } = routerSettings(["--vnodes", "256"], env, files);
  assert.equal(config.configFile, "r.json", "KVSTORE_ROUTER_CONFIG names the file");
  assert.equal(config.vnodes, 256, "the flag wins");
  assert.equal(config.readFrom, "master", "the environment beats the file");
  assert.equal(config.connectTimeoutMs, 250, "the file beats the default");
  assert.equal(config.migrationBatchKeys, 500, "the default is left");
  assert.equal(config.shardsSetting, "--shards", "messages name --shards when nothing set it");
  const shards = (args: string[], env: Record<string, string>) => routerSettings(args, env, files).config.shardsSetting;
  assert.equal(shards(["--shards", "a:1"], { KVSTORE_ROUTER_SHARDS: "b:1" }), "--shards");
  assert.equal(shards([], { KVSTORE_ROUTER_SHARDS: "b:1" }), "KVSTORE_ROUTER_SHARDS");
  assert.equal(shards(["--config", "s.json"], {}), "shards (from s.json)");
  assert.equal(routerSettings(["--config", "other.json"], env, files).config.vnodes, 128, "--config beats the env's");
  assert.equal(routerSettings(["--config", "other.json"], {}, files).config.vnodes, 32);
  assert.equal(routerSettings([], {}, files).config.configFile, null);
});

Deno.test("a node's KVSTORE_* variables neither move a router nor draw its warnings", () => {
  const env = {
    KVSTORE_ADDRESS: "127.0.0.1:7000",
    KVSTORE_DATA_DIR: "/var/lib/node",
    KVSTORE_CONFIG: "node.json",
    KVSTORE_ENDPOINT: "127.0.0.1:1",
    KVSTORE_MAX_VALUE_BYTE: "1",
  };
  const { config, warnings } = routerSettings([], env);
  assert.deepEqual(config.address, { host: "0.0.0.0", port: 50051 });
  assert.equal(config.dataDir, ".");
  assert.equal(config.configFile, null, "KVSTORE_CONFIG is the node's file");
  assert.deepEqual(warnings, []);
});

Deno.test("unknown KVSTORE_ROUTER_* variables and file keys are warnings with the closest known name", () => {
  const files = { "r.json": JSON.stringify({ shard: "127.0.0.1:7101", config: "x.json", replicas: "a:1" }) };
  const { warnings } = routerSettings(
    ["--config", "r.json"],
    { KVSTORE_ROUTER_ADRESS: "x", KVSTORE_ROUTER_ZZZZ: "1" },
    files,
  );
  assert.deepEqual(warnings, [
    'Ignoring unknown setting "shard" in r.json (did you mean shards?)',
    'Ignoring unknown setting "config" in r.json (it is only accepted on the command line)',
    'Ignoring unknown setting "replicas" in r.json',
    "Ignoring unknown environment variable KVSTORE_ROUTER_ADRESS (did you mean KVSTORE_ROUTER_ADDRESS?)",
    "Ignoring unknown environment variable KVSTORE_ROUTER_ZZZZ",
  ]);
});

Deno.test("an invalid router setting is refused, named as its source spells it", () => {
  const files = {
    "bad.json": JSON.stringify({ "read-from": "nearest" }),
    "loop.json": JSON.stringify({ address: "127.0.0.1:9000" }),
    "broken.json": "{ nope",
  };
  const parse = (args: string[], env: Record<string, string>) => () => routerSettings(args, env, files);
  assert.match(
    refusal(parse([], { KVSTORE_ROUTER_VNODES: "0" })),
    /^Invalid KVSTORE_ROUTER_VNODES "0": must be from 1/,
  );
  assert.match(
    refusal(parse(["--config", "bad.json"], {})),
    /^Invalid read-from \(from bad\.json\) "nearest": expected one of master, replica$/,
  );
  assert.match(refusal(parse(["--vnodes", "x"], { KVSTORE_ROUTER_VNODES: "8" })), /^Invalid --vnodes "x"/);
  assert.match(
    refusal(parse(["--config", "loop.json"], { KVSTORE_ROUTER_SHARDS: "127.0.0.1:9000" })),
    /^Invalid KVSTORE_ROUTER_SHARDS: shard "127\.0\.0\.1:9000" is the router's own address \(from loop\.json\) 127\.0\.0\.1:9000$/,
  );
  assert.match(refusal(parse(["--config", "broken.json"], {})), /^Cannot read config file broken\.json: /);
  assert.match(
    refusal(parse([], { KVSTORE_ROUTER_CONFIG: "missing.json" })),
    /^Cannot read config file "missing\.json" \(KVSTORE_ROUTER_CONFIG\): /,
  );
  assert.match(
    refusal(parse([], { KVSTORE_ROUTER_MAX_VALUE_BYTES: "lots" })),
    /^Invalid KVSTORE_ROUTER_MAX_VALUE_BYTES/,
  );
  assert.match(
    refusal(parse([], { KVSTORE_ROUTER_METRICS_ADDRESS: "localhost" })),
    /^Invalid KVSTORE_ROUTER_METRICS_ADDRESS "localhost": expected host:port/,
  );
});

Deno.test("kvstore router --help documents the environment and the config file", () => {
  const usage = routerUsage();
  for (const flag of ROUTER_FLAGS) assert.ok(usage.includes(`--${flag.name}`), flag.name);
  assert.match(usage, /--config FILE +Read settings from a JSON file [^]*?\(env\s+KVSTORE_ROUTER_CONFIG\)/);
  assert.match(usage, /KVSTORE_ROUTER_SHARDS/);
  assert.match(usage, /flags win over\s+the\s+environment,\s+which\s+wins\s+over\s+the\s+file/);
});
