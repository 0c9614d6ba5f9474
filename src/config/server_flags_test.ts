import assert from "node:assert/strict";
import { parseServerArgs, SERVER_FLAGS, type ServerConfig, serverUsage } from "./server_flags.ts";
import { UsageError } from "./usage_error.ts";
import { USAGE_WIDTH } from "./usage_text.ts";

function config(args: string[]): ServerConfig {
  const parsed = parseServerArgs(args);
  assert.equal(parsed.help, false);
  return (parsed as { config: ServerConfig }).config;
}

function usageError(args: string[]): string {
  try {
    parseServerArgs(args);
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${error}`);
    return error.message;
  }
  assert.fail(`expected ${JSON.stringify(args)} to be refused`);
}

Deno.test("no flags: a master on 0.0.0.0:50051 with the documented defaults", () => {
  const defaults = config([]);
  assert.equal(defaults.role, "master");
  assert.deepEqual(defaults.address, { host: "0.0.0.0", port: 50051 });
  assert.equal(defaults.dataDir, ".");
  assert.deepEqual(defaults.limits, { keyBytesMax: 65536, valueBytesMax: 16777216, ttlSecondsMax: 315360000 });
  assert.equal(defaults.logLevel, "info");
});

Deno.test("the DESIGN.md command lines parse as written", () => {
  const master = config(["--master", "--address", "0.0.0.0:50051", "--replicas", "localhost:50052,localhost:50053"]);
  assert.deepEqual(master.replicas, [{ host: "localhost", port: 50052 }, { host: "localhost", port: 50053 }]);
  const replica = config(["--replica", "--address", "0.0.0.0:50052", "--master-address", "localhost:50051"]);
  assert.equal(replica.role, "replica");
  assert.deepEqual(replica.masterAddress, { host: "localhost", port: 50051 });
});

Deno.test("--flag=value works as well as --flag value", () => {
  assert.equal(config(["--data-dir=/tmp/x"]).dataDir, "/tmp/x");
});

Deno.test("sizes accept units", () => {
  assert.equal(config(["--max-value-bytes", "1mb"]).limits.valueBytesMax, 1048576);
  assert.equal(config(["--max-value-bytes", "512KiB"]).limits.valueBytesMax, 524288);
  assert.equal(config(["--max-key-bytes", "100"]).limits.keyBytesMax, 100);
});

Deno.test("--help asks for help", () => {
  assert.deepEqual(parseServerArgs(["--help"]), { help: true });
});

Deno.test("mistakes are refused with a message naming what is wrong", () => {
  assert.match(usageError(["--bogus"]), /Unknown flag --bogus/);
  assert.match(usageError(["--address"]), /--address needs a value/);
  assert.match(usageError(["--address", "nonsense"]), /Invalid --address "nonsense": expected host:port/);
  assert.match(usageError(["--address", "host:99999"]), /port must be a number from 0 to 65535/);
  assert.match(usageError(["--address", "bad host:1"]), /not a host name/);
  assert.match(usageError(["--address", "999.1.1.1:1"]), /"999\.1\.1\.1" is not a host name or IPv4 address/);
  assert.deepEqual(config(["--address", "255.255.255.255:1"]).address, { host: "255.255.255.255", port: 1 });
  assert.deepEqual(config(["--address", "db1.example.com:1"]).address, { host: "db1.example.com", port: 1 });
  assert.match(usageError(["--replica"]), /replica needs --master-address/);
  assert.match(usageError(["--master", "--replica", "--master-address", "a:1"]), /not both/);
  assert.match(usageError(["--master-address", "a:1"]), /--master-address is for replicas/);
  assert.match(usageError(["--replica", "--master-address", "a:1", "--replicas", "b:2"]), /--replicas is for a master/);
  assert.match(usageError(["--max-value-bytes", "lots"]), /Invalid --max-value-bytes "lots"/);
  assert.match(usageError(["--max-ttl-seconds", "0"]), /must be from 1/);
  assert.match(
    usageError(["--replica", "--master-address", "a:1", "--repl-timeout-ms", "500"]),
    /Invalid --repl-timeout-ms "500": must be at least 2000 \(the master pings an idle link every 1000 ms/,
  );
  assert.equal(config(["--repl-timeout-ms", "2000"]).replicationTimeoutMs, 2000);
  assert.equal(config([]).shutdownReplicaWaitMs, 10_000, "Redis's shutdown-timeout");
  assert.equal(config(["--shutdown-replica-wait-ms", "0"]).shutdownReplicaWaitMs, 0);
  assert.equal(config([]).shutdownDiskWaitMs, 10_000);
  assert.equal(config(["--shutdown-disk-wait-ms", "500"]).shutdownDiskWaitMs, 500);
  assert.match(usageError(["--shutdown-disk-wait-ms", "0"]), /Invalid --shutdown-disk-wait-ms "0": must be from 100/);
  assert.match(
    usageError(["--shutdown-replica-wait-ms=-1"]),
    /Invalid --shutdown-replica-wait-ms "-1": must be from 0/,
  );
  assert.match(usageError(["--log-level", "loud"]), /expected one of debug, info, warn, error/);
  assert.match(usageError(["stray"]), /Unexpected argument "stray"/);
  assert.match(usageError(["--master=yes"]), /--master takes no value/);
});

Deno.test("IPv6 addresses are written in brackets", () => {
  assert.deepEqual(config(["--address", "[::1]:7000"]).address, { host: "::1", port: 7000 });
  assert.match(usageError(["--address", "[::1]7000"]), /expected host:port/);
});

Deno.test("the usage text lists every flag, with lines that fit the help width", () => {
  const usage = serverUsage();
  for (const flag of SERVER_FLAGS) assert.ok(usage.includes(`--${flag.name}`), flag.name);
  for (const line of usage.split("\n")) assert.ok(line.length <= USAGE_WIDTH, `${line.length} columns: ${line}`);
  assert.match(usage, /--max-ttl-seconds SECONDS +Longest TTL .*\n +Default: 315360000 \(10 years\)\./);
});

Deno.test("durability flags: --appendfsync and --snapshot-interval-seconds, with Redis's defaults", () => {
  const defaults = config([]);
  assert.equal(defaults.appendfsync, "everysec");
  assert.equal(defaults.snapshotIntervalSeconds, 60);
  assert.equal(config(["--appendfsync", "always"]).appendfsync, "always");
  assert.equal(config(["--appendfsync=no"]).appendfsync, "no");
  assert.equal(config(["--snapshot-interval-seconds", "0"]).snapshotIntervalSeconds, 0);
  assert.equal(defaults.logRewriteBytesMin, 64 * 1024 * 1024);
  assert.equal(config(["--log-rewrite-min-bytes", "0"]).logRewriteBytesMin, 0);
  assert.equal(config(["--log-rewrite-min-bytes", "1gb"]).logRewriteBytesMin, 1024 ** 3);
  assert.match(
    usageError(["--log-rewrite-min-bytes", "1025gb"]),
    /Invalid --log-rewrite-min-bytes "1025gb": must be from 0 to \d+ bytes \(0 bytes to 1024gb\)/,
  );
  assert.match(
    usageError(["--appendfsync", "sometimes"]),
    /Invalid --appendfsync "sometimes": expected one of always, everysec, no/,
  );
  assert.match(usageError(["--snapshot-interval-seconds=-1"]), /Invalid --snapshot-interval-seconds "-1"/);
  assert.match(serverUsage(), /--appendfsync always\|everysec\|no/);
});

Deno.test("a size or count of 0 where 0 makes no sense is refused, naming the flag and its range", () => {
  const refused: [string, RegExp][] = [
    ["--max-value-bytes", /^Invalid --max-value-bytes "0": must be from 1 to 536870912 bytes \(1 byte to 512mb\)$/],
    ["--max-key-bytes", /^Invalid --max-key-bytes "0": must be from 1 to 1048576 bytes \(1 byte to 1mb\)$/],
    ["--max-ttl-seconds", /^Invalid --max-ttl-seconds "0": must be from 1 to 2147483647$/],
    ["--max-connections", /^Invalid --max-connections "0": must be from 1 to 1000000$/],
    ["--backlog-bytes", /^Invalid --backlog-bytes "0": must be from 16384 to 68719476736 bytes \(16kb to 64gb\)$/],
    ["--repl-timeout-ms", /^Invalid --repl-timeout-ms "0": must be at least 2000/],
    ["--shutdown-disk-wait-ms", /^Invalid --shutdown-disk-wait-ms "0": must be from 100 to 3600000$/],
  ];
  for (const [flag, message] of refused) assert.match(usageError([flag, "0"]), message, flag);
  assert.match(usageError(["--repl-timeout-ms", "99999999999"]), /must be from 2000 to 86400000$/);
  // Where 0 means something, it is taken: no wait, no automatic snapshots.
  assert.equal(config(["--shutdown-replica-wait-ms", "0"]).shutdownReplicaWaitMs, 0);
  assert.equal(config(["--snapshot-interval-seconds", "0"]).snapshotIntervalSeconds, 0);
  assert.equal(config(["--max-value-bytes", "1"]).limits.valueBytesMax, 1);
});
