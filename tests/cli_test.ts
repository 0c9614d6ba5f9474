/**
 * The command line: --help, and every start-up mistake exits non-zero within seconds
 * with one clear line on stderr.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { fileSizeLimit, kvstoreCommand, runKvstore, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The last non-empty line of stderr: the line that says what is wrong. */
function lastLine(text: string): string {
  return text.trim().split("\n").at(-1) ?? "";
}

Deno.test("smoke: --help prints usage and exits 0", opts, async () => {
  const result = await runKvstore(["--help"]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /Usage:/);
  for (const flag of ["--master", "--replica", "--address", "--master-address", "--replicas", "--data-dir"]) {
    assert.ok(result.stdout.includes(flag), flag);
  }
});

const mistakes: [string, string[], RegExp, number][] = [
  ["an unknown flag", ["--bogus"], /^kvstore: Unknown flag --bogus/, 2],
  ["a malformed address", ["--address", "localhost"], /^kvstore: Invalid --address "localhost": expected host:port/, 2],
  ["a port out of range", ["--address", "127.0.0.1:70000"], /port must be a number from 0 to 65535/, 2],
  ["a replica without a master", ["--replica"], /^kvstore: A replica needs --master-address/, 2],
  ["an unknown subcommand", ["frobnicate"], /^kvstore: Unknown command "frobnicate"/, 2],
  ["an invalid size", ["--max-value-bytes=-1"], /^kvstore: Invalid --max-value-bytes "-1"/, 2],
  ["a flag value that looks like a flag", ["--max-value-bytes", "-1"], /needs a value; .*--max-value-bytes=-VALUE/, 2],
];

for (const [what, args, message, code] of mistakes) {
  Deno.test(`smoke: ${what} exits ${code} with one clear line`, opts, async () => {
    const result = await runKvstore(args, { timeoutMs: 10_000 });
    assert.equal(result.code, code, result.stderr);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr.trim(), message);
  });
}

Deno.test("smoke: an address already in use exits 1 within seconds, saying so", opts, async () => {
  await using first = await startServer();
  const dataDir = await Deno.makeTempDir({ prefix: "kvstore-test-" });
  try {
    const result = await runKvstore(["--address", first.address, "--data-dir", dataDir], { timeoutMs: 10_000 });
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      lastLine(result.stderr),
      /^kvstore: Cannot listen on 127\.0\.0\.1:\d+: the address is already in use/,
    );
    assert.ok(result.elapsedMs < 10_000);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
  assert.ok(first.running, "the first server is unaffected");
});

Deno.test(
  "an address of no local interface, or a name that does not resolve, exits 1 with one clear line",
  opts,
  async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "kvstore-test-" });
    try {
      // 192.0.2.1 is in TEST-NET-1 (RFC 5737), which no machine is given; .invalid never resolves (RFC 2606).
      const cases: [string, RegExp][] = [
        ["192.0.2.1:50051", /no network interface of this machine has that address/],
        ["nosuchhost.invalid:50051", /the host name does not resolve/],
      ];
      for (const [address, detail] of cases) {
        const result = await runKvstore(["--address", address, "--data-dir", dataDir], { timeoutMs: 20_000 });
        assert.equal(result.code, 1, result.stderr);
        assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
        assert.match(result.stderr.trim(), new RegExp(`^kvstore: Cannot listen on ${address}: `));
        assert.match(result.stderr, detail);
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
);

Deno.test("a data directory that is a file stops start-up with one clear line", opts, async () => {
  const file = await Deno.makeTempFile({ prefix: "kvstore-test-" });
  try {
    const result = await runKvstore(["--address", "127.0.0.1:0", "--data-dir", file], { timeoutMs: 10_000 });
    assert.equal(result.code, 1, result.stderr);
    assert.match(lastLine(result.stderr), /^kvstore: Cannot use data directory ".*": /);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test({
  name: "a data directory whose files cannot be written stops start-up with one clear line",
  // /dev/full refuses every write, as a full disk does (and cannot be truncated).
  ignore: Deno.build.os !== "linux",
  ...opts,
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "kvstore-test-" });
    try {
      await Deno.symlink("/dev/full", `${dataDir}/kvstore.lock`);
      const result = await runKvstore(["--address", "127.0.0.1:0", "--data-dir", dataDir], { timeoutMs: 10_000 });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(
        result.stderr.trim(),
        /^kvstore: Cannot start with data directory ".*": .*\(os error \d+\)$/,
      );
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test("a master whose log cannot take its new history at start-up shuts down and exits 1", opts, async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kvstore-test-" });
  try {
    // A log of a few KiB, left by a node that died before it could snapshot.
    const first = await startServer({ dataDir, args: ["--snapshot-interval-seconds", "0"] });
    using client = new KvClient(first.address);
    await client.mset(Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, value: "v".repeat(200) })));
    await first.kill();
    // Restarted with room for no more than 512 bytes per file, the master can load the log
    // but not append the record of the history it starts: replication fails to start
    // after the node already listens and runs its timers.
    const { command, args } = kvstoreCommand(["--address", "127.0.0.1:0", "--data-dir", dataDir], fileSizeLimit(1));
    const child = new Deno.Command(command, {
      args,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const output = await child.output();
    clearTimeout(timer);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 1, stderr);
    assert.match(lastLine(stderr), /^kvstore: log: Cannot append the new history to .*: File too large/);
    assert.match(stderr, /Shutting down reason="start-up failed"[\s\S]*Stopped/, "the node released what it held");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a missing data directory is created", opts, async () => {
  const parent = await Deno.makeTempDir({ prefix: "kvstore-test-" });
  try {
    await using server = await startServer({ dataDir: `${parent}/nested/data` });
    assert.ok((await Deno.stat(`${parent}/nested/data`)).isDirectory);
    assert.ok(server.running);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});
