import assert from "node:assert/strict";
import { parseServerArgs, SERVER_FLAGS, type ServerConfig } from "./server_flags.ts";
import { envVarName, nameSources, resolveSettings, ROUTER_ENV_PREFIX, type SettingSpec } from "./settings.ts";
import { UsageError } from "./usage_error.ts";

const TABLE: SettingSpec[] = [
  { name: "address", type: "string" },
  { name: "max-value-bytes", type: "string" },
  { name: "replicas", type: "string" },
  { name: "master", type: "boolean" },
  { name: "replica", type: "boolean" },
];

function resolve(flags: Record<string, string | boolean>, env: Record<string, string>, file?: object) {
  return resolveSettings({
    table: TABLE,
    flags,
    env,
    file: file === undefined ? null : { path: "kvstore.json", text: JSON.stringify(file) },
    exclusiveGroups: [["master", "replica"]],
  });
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

Deno.test("environment names are KVSTORE_ (or another prefix) and the flag in upper snake case", () => {
  assert.equal(envVarName("max-value-bytes"), "KVSTORE_MAX_VALUE_BYTES");
  assert.equal(envVarName("address"), "KVSTORE_ADDRESS");
  assert.equal(envVarName("read-from", ROUTER_ENV_PREFIX), "KVSTORE_ROUTER_READ_FROM");
});

Deno.test("variables under a foreign prefix are neither read nor warned about; another prefix reads only its own", () => {
  const env = { KVSTORE_ADDRESS: "node:1", KVSTORE_ROUTER_ADDRESS: "router:1", KVSTORE_ROUTER_ADRESS: "x" };
  const node = resolveSettings({ table: TABLE, flags: {}, env, file: null, foreignEnvPrefixes: [ROUTER_ENV_PREFIX] });
  assert.deepEqual(node.values, { address: "node:1" });
  assert.deepEqual(node.warnings, []);
  const router = resolveSettings({ table: TABLE, flags: {}, env, file: null, envPrefix: ROUTER_ENV_PREFIX });
  assert.deepEqual(router.values, { address: "router:1" });
  assert.deepEqual(router.sources.get("address"), { kind: "env", label: "KVSTORE_ROUTER_ADDRESS" });
  assert.deepEqual(router.warnings, [
    "Ignoring unknown environment variable KVSTORE_ROUTER_ADRESS (did you mean KVSTORE_ROUTER_ADDRESS?)",
  ]);
});

Deno.test("a flag beats the environment, which beats the file, which beats the default", () => {
  const file = { address: "file:1", "max-value-bytes": "3mb", replicas: "f:1" };
  const env = { KVSTORE_ADDRESS: "env:1", KVSTORE_MAX_VALUE_BYTES: "2mb" };
  const all = resolve({ address: "flag:1" }, env, file);
  assert.deepEqual(all.values, { address: "flag:1", "max-value-bytes": "2mb", replicas: "f:1" });
  assert.deepEqual(
    Object.fromEntries([...all.sources].map(([name, source]) => [name, source.label])),
    { address: "--address", "max-value-bytes": "KVSTORE_MAX_VALUE_BYTES", replicas: "replicas (from kvstore.json)" },
  );
  assert.deepEqual(resolve({}, {}, {}).values, {});
});

Deno.test("config file values: numbers become digits, lists join with commas, null is unset", () => {
  const { values } = resolve({}, {}, {
    "max-value-bytes": 1048576,
    replicas: ["a:1", "b:2"],
    address: null,
    master: true,
  });
  assert.deepEqual(values, { "max-value-bytes": "1048576", replicas: "a:1,b:2", master: true });
});

Deno.test("wrong types in the file are refused, naming the key and the file", () => {
  assert.match(
    refusal(() => resolve({}, {}, { master: "yes" })),
    /^Invalid master \(from kvstore\.json\) "yes": expected true or false$/,
  );
  assert.match(refusal(() => resolve({}, {}, { address: { host: "x" } })), /Invalid address \(from kvstore\.json\)/);
  assert.match(
    refusal(() => resolveSettings({ table: TABLE, flags: {}, env: {}, file: { path: "k.json", text: "{nope" } })),
    /^Cannot read config file k\.json: /,
  );
  assert.match(
    refusal(() => resolveSettings({ table: TABLE, flags: {}, env: {}, file: { path: "k.json", text: "[1]" } })),
    /expected a JSON object of settings/,
  );
});

Deno.test("boolean variables take true/false, 1/0, yes/no, on/off; anything else is refused", () => {
  assert.equal(resolve({}, { KVSTORE_REPLICA: "yes" }).values.replica, true);
  assert.equal(resolve({}, { KVSTORE_REPLICA: "0" }).values.replica, false);
  assert.match(refusal(() => resolve({}, { KVSTORE_REPLICA: "maybe" })), /^Invalid KVSTORE_REPLICA "maybe"/);
});

Deno.test("an empty variable counts as unset", () => {
  assert.deepEqual(resolve({}, { KVSTORE_ADDRESS: "" }, { address: "file:1" }).values, { address: "file:1" });
});

Deno.test("unknown variables and keys are warnings, with the closest known name", () => {
  const { warnings } = resolveSettings({
    table: TABLE,
    flags: {},
    env: { KVSTORE_MAX_VALUE_BYTE: "1", KVSTORE_ENDPOINT: "x:1", KVSTORE_ZZZZZZZZZZZZ: "1", OTHER: "1" },
    file: { path: "kvstore.json", text: JSON.stringify({ adress: "x:1", config: "other.json" }) },
    commandLineOnly: ["config"],
    otherEnvNames: ["KVSTORE_ENDPOINT"],
  });
  assert.deepEqual(warnings, [
    'Ignoring unknown setting "adress" in kvstore.json (did you mean address?)',
    'Ignoring unknown setting "config" in kvstore.json (it is only accepted on the command line)',
    "Ignoring unknown environment variable KVSTORE_MAX_VALUE_BYTE (did you mean KVSTORE_MAX_VALUE_BYTES?)",
    "Ignoring unknown environment variable KVSTORE_ZZZZZZZZZZZZ",
  ]);
});

Deno.test("a role chosen by a stronger source replaces the weaker one's instead of clashing", () => {
  const { values } = resolve({ master: true }, {}, { replica: true });
  assert.deepEqual(values, { master: true });
  const both = resolve({ master: true, replica: true }, {});
  assert.deepEqual(both.values, { master: true, replica: true }, "the same source may still clash");
});

Deno.test("messages about --flags are rewritten to name the real source", () => {
  const { sources } = resolve({ address: "a:1" }, { KVSTORE_MAX_VALUE_BYTES: "x" }, { replicas: "r:1" });
  assert.equal(
    nameSources('Invalid --max-value-bytes "x"; --replicas is wrong; --address too; --replica untouched', sources),
    'Invalid KVSTORE_MAX_VALUE_BYTES "x"; replicas (from kvstore.json) is wrong; --address too; --replica untouched',
  );
});

// The server's own table, through parseServerArgs.

function serverConfig(args: string[], env: Record<string, string>, files: Record<string, string> = {}) {
  const parsed = parseServerArgs(args, {
    env,
    readFile: (path) => {
      if (!(path in files)) throw new Deno.errors.NotFound(`No such file: ${path}`);
      return files[path];
    },
  });
  assert.equal(parsed.help, false);
  return parsed as { config: ServerConfig; warnings: readonly string[] };
}

Deno.test("every server flag but help and config can come from the environment and a file", () => {
  const settable = SERVER_FLAGS.filter((flag) => flag.name !== "help" && flag.name !== "config");
  const warnings = serverConfig([], Object.fromEntries(settable.map((flag) => [envVarName(flag.name), ""]))).warnings;
  assert.deepEqual(warnings, [], "no server flag's variable is unknown");
});

Deno.test("the KVSTORE_ variables kvstore reads besides its flags draw no warning", () => {
  const env = {
    KVSTORE_ENDPOINT: "127.0.0.1:1",
    KVSTORE_HISTFILE: "",
    KVSTORE_CRASHPOINT: "log.appended",
    KVSTORE_BIN: "/usr/bin/kvstore",
    KVSTORE_DENO_CACHE: "/tmp/cache",
  };
  assert.deepEqual(serverConfig([], env).warnings, []);
});

Deno.test("a router's KVSTORE_ROUTER_* variables neither configure a node nor draw its warnings", () => {
  const env = {
    KVSTORE_ROUTER_ADDRESS: "127.0.0.1:7000",
    KVSTORE_ROUTER_CONFIG: "router.json",
    KVSTORE_ROUTER_SHARDS: "127.0.0.1:7101",
    KVSTORE_ROUTER_TYPO: "1",
  };
  const { config, warnings } = serverConfig([], env);
  assert.deepEqual(config.address, { host: "0.0.0.0", port: 50051 });
  assert.equal(config.configFile, null);
  assert.deepEqual(warnings, []);
  // No node flag may hide under the router's prefix, or a node would ignore it.
  for (const flag of SERVER_FLAGS) assert.ok(!envVarName(flag.name).startsWith(ROUTER_ENV_PREFIX), flag.name);
});

Deno.test("the server reads --config, then KVSTORE_CONFIG, and applies the precedence", () => {
  const files = {
    "a.json": JSON.stringify({ "max-value-bytes": "1kb", "log-format": "json", "data-dir": "/from-file" }),
    "b.json": JSON.stringify({ "data-dir": "/from-b" }),
  };
  const fromFile = serverConfig(["--config", "a.json"], { KVSTORE_CONFIG: "b.json" }, files).config;
  assert.equal(fromFile.configFile, "a.json");
  assert.equal(fromFile.dataDir, "/from-file");
  assert.equal(fromFile.limits.valueBytesMax, 1024);
  assert.equal(fromFile.logFormat, "json");
  const fromEnv = serverConfig(["--max-value-bytes", "3kb"], {
    KVSTORE_CONFIG: "a.json",
    KVSTORE_MAX_VALUE_BYTES: "2kb",
  }, files);
  assert.equal(fromEnv.config.limits.valueBytesMax, 3 * 1024, "the flag wins");
  assert.equal(
    serverConfig([], { KVSTORE_CONFIG: "a.json", KVSTORE_MAX_VALUE_BYTES: "2kb" }, files).config.limits.valueBytesMax,
    2048,
  );
  assert.equal(serverConfig([], {}, files).config.configFile, null);
});

Deno.test("an invalid value stops start-up with a message naming the setting and its source", () => {
  const files = {
    "k.json": JSON.stringify({ "max-value-bytes": "lots" }),
    "m.json": JSON.stringify({ "master-address": "m:1" }),
  };
  const parse = (args: string[], env: Record<string, string>) => () => serverConfig(args, env, files);
  assert.match(
    refusal(parse([], { KVSTORE_MAX_VALUE_BYTES: "huge" })),
    /^Invalid KVSTORE_MAX_VALUE_BYTES "huge": expected a size/,
  );
  assert.match(refusal(parse(["--config", "k.json"], {})), /^Invalid max-value-bytes \(from k\.json\) "lots"/);
  assert.match(refusal(parse(["--max-value-bytes", "x"], {})), /^Invalid --max-value-bytes "x"/);
  assert.match(refusal(parse([], { KVSTORE_ADDRESS: "nohost" })), /^Invalid KVSTORE_ADDRESS "nohost"/);
  assert.match(
    refusal(parse(["--config", "m.json"], {})),
    /^master-address \(from m\.json\) is for replicas; add --replica, or drop master-address \(from m\.json\)$/,
  );
  assert.match(
    refusal(parse(["--config", "missing.json"], {})),
    /^Cannot read config file "missing\.json" \(--config\): /,
  );
  assert.match(refusal(parse([], { KVSTORE_CONFIG: "missing.json" })), /\(KVSTORE_CONFIG\)/);
});

Deno.test("--metrics-address is parsed and must differ from the gRPC address", () => {
  assert.deepEqual(serverConfig(["--metrics-address", "127.0.0.1:9100"], {}).config.metricsAddress, {
    host: "127.0.0.1",
    port: 9100,
  });
  assert.equal(serverConfig([], {}).config.metricsAddress, null);
  assert.match(
    refusal(() => serverConfig(["--address", "0.0.0.0:7000", "--metrics-address", "0.0.0.0:7000"], {})),
    /give metrics a port of their own/,
  );
});
