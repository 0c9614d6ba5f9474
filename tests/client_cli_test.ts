/**
 * The client subcommands against a real server: success, not found, bad usage, server
 * down, and --json output that parses.
 */

import assert from "node:assert/strict";
import { freePort, kvstoreCommand, runKvstore, runProcess, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("smoke: get, set, del, exists, expire and ttl work from the command line", opts, async () => {
  await using server = await startServer();
  const kv = (...args: string[]) => runKvstore([...args, "--endpoint", server.address]);

  assert.deepEqual(await kv("set", "greeting", "hello world").then((r) => [r.code, r.stdout]), [0, "OK\n"]);
  assert.deepEqual(await kv("get", "greeting").then((r) => [r.code, r.stdout]), [0, "hello world\n"]);
  assert.deepEqual(await kv("exists", "greeting", "nope").then((r) => r.stdout), "1\n");
  assert.deepEqual(await kv("ttl", "greeting").then((r) => r.stdout), "-1\n");
  assert.deepEqual(await kv("expire", "greeting", "100").then((r) => r.stdout), "1\n");
  assert.match(await kv("ttl", "greeting").then((r) => r.stdout), /^(100|9[0-9])\n$/);
  assert.deepEqual(await kv("set", "session", "x", "--ttl", "30").then((r) => r.code), 0);
  // Each command is a process of its own; on a loaded machine seconds pass between them.
  assert.match(await kv("ttl", "session").then((r) => r.stdout), /^(30|2[0-9])\n$/);
  assert.deepEqual(await kv("del", "greeting", "session", "nope").then((r) => r.stdout), "2\n");

  const missing = await kv("get", "greeting");
  assert.equal(missing.code, 1, "get of a missing key exits 1");
  assert.equal(missing.stdout, "");
  assert.match(missing.stderr, /Key "greeting" not found/);
});

Deno.test("--json prints one parseable document per command", opts, async () => {
  await using server = await startServer();
  const kv = (...args: string[]) => runKvstore([...args, "--json", "--endpoint", server.address]);
  assert.deepEqual(JSON.parse((await kv("set", "k", "v")).stdout), { key: "k", ok: true, ttl: null });
  assert.deepEqual(JSON.parse((await kv("get", "k")).stdout), { key: "k", found: true, value: "v" });
  assert.deepEqual(JSON.parse((await kv("get", "nope")).stdout), { key: "nope", found: false, value: null });
  assert.deepEqual(JSON.parse((await kv("exists", "k")).stdout), { exists: 1 });
  assert.deepEqual(JSON.parse((await kv("del", "k")).stdout), { deleted: 1 });
  const info = JSON.parse((await kv("info")).stdout);
  assert.equal(info.role, "master");
  assert.equal(info.address, server.address);
});

Deno.test(
  "KVSTORE_ENDPOINT names the server when --endpoint is absent, and --endpoint wins over it",
  opts,
  async () => {
    await using server = await startServer();
    const result = await runKvstore(["info"], { env: { KVSTORE_ENDPOINT: server.address } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /role\s+master/);
    const down = `127.0.0.1:${freePort()}`;
    const flagFirst = await runKvstore(["info", "--endpoint", server.address], { env: { KVSTORE_ENDPOINT: down } });
    assert.equal(flagFirst.code, 0, `--endpoint wins over KVSTORE_ENDPOINT: ${flagFirst.stderr}`);
  },
);

Deno.test("usage mistakes exit 2 with one line", opts, async () => {
  for (
    const [args, message] of [
      [["get"], /kvstore get: Expected KEY; usage: kvstore get KEY/],
      [["get", "a", "b"], /Expected KEY/],
      [["set", "k", "v", "--ttl", "soon"], /Invalid --ttl "soon"/],
      [["get", "k", "--bogus"], /Unknown flag --bogus/],
      [["expire", "k", "ten"], /Invalid SECONDS "ten"/],
    ] as const
  ) {
    const result = await runKvstore([...args, "--endpoint", "127.0.0.1:1"]);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.equal(result.stderr.trim().split("\n").length, 1);
    assert.match(result.stderr, message);
  }
});

Deno.test("a server that is down gives exit 3 and one clear line", opts, async () => {
  const endpoint = `127.0.0.1:${freePort()}`;
  const result = await runKvstore(["get", "k", "--endpoint", endpoint, "--timeout-ms", "3000"]);
  assert.equal(result.code, 3, result.stderr);
  assert.equal(result.stderr.trim().split("\n").length, 1);
  assert.match(result.stderr, new RegExp(`kvstore get: Cannot reach ${endpoint}: .*is the server running`));
});

Deno.test("a server error is reported with its status", opts, async () => {
  await using server = await startServer();
  const result = await runKvstore(["set", "", "v", "--endpoint", server.address]);
  assert.equal(result.code, 3);
  assert.match(result.stderr, /^kvstore set: INVALID_ARGUMENT: store: Cannot set: the key is empty/);
});

/** Runs kvstore with `args` and its standard output sent to `stdout` (a path), as `kvstore
 * ARGS > STDOUT` in a shell. */
function runKvstoreTo(stdout: string, args: readonly string[]) {
  const { command, args: fullArgs } = kvstoreCommand(args);
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  return runProcess("sh", ["-c", `${[command, ...fullArgs].map(quote).join(" ")} > ${quote(stdout)}`]);
}

Deno.test("output that cannot be written exits 4 with one line, for a client command as for help", opts, async () => {
  await using server = await startServer();
  const kv = (...args: string[]) => runKvstoreTo("/dev/full", [...args, "--endpoint", server.address]);
  assert.equal((await runKvstore(["set", "k", "v", "--endpoint", server.address])).code, 0);
  for (
    const [args, program] of [
      [["get", "k"], "kvstore get"],
      [["info", "--json"], "kvstore info"],
      [["export", "-"], "kvstore export"],
      [["get", "--help"], "kvstore get"],
      // Its statuses are printed as they stream in: the first that cannot be ends the watch.
      [["health", "--watch"], "kvstore health"],
    ] as const
  ) {
    const result = await kv(...args);
    assert.equal(result.code, 4, `${args.join(" ")}: ${result.stderr}`);
    assert.equal(
      result.stderr,
      `${program}: Cannot write standard output: No space left on device (os error 28)\n`,
      args.join(" "),
    );
  }
  for (const args of [["--version"], ["help"], ["--help"], ["router", "--help"]]) {
    const result = await runKvstoreTo("/dev/full", args);
    assert.equal(result.code, 4, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, /^kvstore( router)?: Cannot write standard output: No space left on device/);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  }
  // A file the command writes too: export's FILE, in a directory that does not exist.
  const missingDir = await runKvstore(["export", "/nonexistent-dir/out.jsonl", "--endpoint", server.address]);
  assert.equal(missingDir.code, 4, missingDir.stderr);
  assert.equal(
    missingDir.stderr,
    "kvstore export: Cannot write /nonexistent-dir/out.jsonl: no such file or directory\n",
  );
});

Deno.test("help lists the subcommands and each subcommand has its own", opts, async () => {
  const overview = await runKvstore(["help"]);
  assert.equal(overview.code, 0);
  for (const name of ["get", "set", "del", "exists", "expire", "ttl", "info"]) {
    assert.match(overview.stdout, new RegExp(`^  ${name} `, "m"));
  }
  const setHelp = await runKvstore(["set", "--help"]);
  assert.equal(setHelp.code, 0);
  assert.match(setHelp.stdout, /Usage: kvstore set KEY VALUE/);
  assert.match(setHelp.stdout, /--ttl SECONDS/);
  assert.match((await runKvstore(["--version"])).stdout, /^kvstore \d+\.\d+\.\d+/);
});
