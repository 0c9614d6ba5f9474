import assert from "node:assert/strict";
import { parseRouterArgs, routerUsage } from "./router_flags.ts";

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
    [["--bogus"], /Unknown flag --bogus/],
  ];
  for (const [args, message] of cases) assert.throws(() => parseRouterArgs(args), message);
  assert.match(routerUsage(), /--migration-pause-ms MS/);
  assert.match(routerUsage(), /--max-connections N +Client connections open at once.*\(default: 10000\)/);
});
