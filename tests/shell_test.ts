/**
 * `kvstore shell`, driven through standard input (a script) and through a
 * pseudo-terminal (prompt, history kept in a file).
 */

import assert from "node:assert/strict";
import { hasScript, runKvstoreOnTerminal, TerminalSession } from "./helpers/cli_input.ts";
import { freePort, runKvstore, startServer } from "./helpers/server_process.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test("smoke: the shell runs piped lines in order with quoting, and exits 0 when all succeed", opts, async () => {
  await using server = await startServer();
  const script = [
    'set greeting "hello world"',
    "get greeting",
    "set session 'it\\'s' --ttl 60",
    "mset a 1 b 2",
    "mget a b nope",
    "exists greeting a nope",
    "",
    "get session --json",
    "quit",
    "get never-run",
  ].join("\n") + "\n";
  const result = await runKvstore(["shell", "--endpoint", server.address], { input: script });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  assert.equal(
    result.stdout,
    'OK\nhello world\nOK\nOK\n1\n2\n\n2\n{"key":"session","found":true,"value":"it\'s"}\n',
  );
});

Deno.test("piped errors are reported per line and the exit status is the last failure's", opts, async () => {
  await using server = await startServer();
  const script = 'get missing\nbogus\nset k "unterminated\nset k v\nget k\n';
  const result = await runKvstore(["shell", "--endpoint", server.address], { input: script });
  assert.equal(result.stdout, "OK\nv\n");
  assert.deepEqual(result.stderr.trim().split("\n"), [
    'kvstore get: Key "missing" not found',
    'kvstore shell: Unknown command "bogus" (type help)',
    "kvstore shell: Unterminated double quote at column 7",
  ]);
  assert.equal(result.code, 2, "the last failure was a usage error");

  const down = await runKvstore(["shell", "--endpoint", `127.0.0.1:${freePort()}`, "--timeout-ms", "2000"], {
    input: "get k\n",
  });
  assert.equal(down.code, 3);
  assert.match(down.stderr, /^kvstore get: Cannot reach 127\.0\.0\.1:\d+/);
});

Deno.test("a piped line past the shell's limit is a usage error, after the lines before it ran", opts, async () => {
  await using server = await startServer();
  // SHELL_LINE_CHARS_MAX is 64 MiB: one character more.
  const input = `set k v\nset big ${"x".repeat(64 * 1024 * 1024)}\nget k\n`;
  const result = await runKvstore(["shell", "--endpoint", server.address], { input, timeoutMs: 60_000 });
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stdout, "OK\n");
  assert.equal(result.stderr, "kvstore shell: Cannot read standard input: line 2 is longer than 67108864 characters\n");
});

Deno.test("help, connect and a nested shell behave", opts, async () => {
  await using first = await startServer();
  await using second = await startServer();
  const script =
    `help\nhelp set\nset where first\nconnect ${second.address}\nget where\nset where second\nshell\nconnect nonsense\n`;
  const result = await runKvstore(["shell", "--endpoint", first.address], { input: script });
  assert.match(result.stdout, /^Commands \(type them as on the command line/);
  assert.match(result.stdout, /Usage: kvstore set KEY VALUE/);
  assert.match(result.stdout, new RegExp(`Connected to ${second.address.replaceAll(".", "\\.")}\nOK\n$`));
  assert.match(result.stderr, /kvstore get: Key "where" not found/, "the second node does not have the first's key");
  assert.match(result.stderr, /kvstore shell: Already in a shell/);
  assert.match(result.stderr, /kvstore shell: Invalid HOST:PORT "nonsense"/);

  const down = `127.0.0.1:${freePort()}`;
  const unreachable = await runKvstore(["shell", "--endpoint", first.address], { input: `connect ${down}\n` });
  assert.equal(unreachable.code, 0, unreachable.stderr);
  assert.match(unreachable.stdout, new RegExp(`^Connected to ${down.replaceAll(".", "\\.")}\n$`));
  assert.match(unreachable.stderr, new RegExp(`^kvstore shell: Cannot reach ${down.replaceAll(".", "\\.")} yet; `));
});

Deno.test("import from standard input is refused inside the shell, which reads its commands there", opts, async () => {
  await using server = await startServer();
  const result = await runKvstore(["shell", "--endpoint", server.address], { input: "import -\nset b 2\n" });
  assert.equal(result.code, 2, result.stderr);
  assert.equal(
    result.stderr,
    "kvstore import: Cannot import standard input inside the shell: the shell reads its commands from it; " +
      "name a file\n",
  );
  assert.equal(result.stdout, "OK\n", "the shell goes on with its next line");
});

Deno.test({
  name: "on a terminal the shell prompts with the endpoint and keeps history in a file",
  ...opts,
  ignore: !hasScript(),
  fn: async () => {
    await using server = await startServer();
    const dir = await Deno.makeTempDir({ prefix: "kvstore-shell-" });
    try {
      const histfile = `${dir}/history`;
      await Deno.writeTextFile(histfile, "get older\n");
      const result = await runKvstoreOnTerminal(
        ["shell", "--endpoint", server.address],
        'set k "v 1"\nget k\nquit\n',
        { env: { KVSTORE_HISTFILE: histfile }, timeoutMs: 30_000 },
      );
      assert.equal(result.code, 0, result.stdout + result.stderr);
      assert.match(result.stdout, new RegExp(`${server.address.replaceAll(".", "\\.")}> `));
      assert.match(result.stdout, /v 1/);
      assert.equal(await Deno.readTextFile(histfile), 'get older\nset k "v 1"\nget k\nquit\n');
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "on a terminal the shell says a server is down, keeps prompting, and leaves on Ctrl-D",
  ...opts,
  ignore: !hasScript(),
  fn: async () => {
    const down = `127.0.0.1:${freePort()}`;
    const result = await runKvstoreOnTerminal(["shell", "--endpoint", down], "get k\n\x04", {
      env: { KVSTORE_HISTFILE: "" },
      timeoutMs: 30_000,
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, new RegExp(`Cannot reach ${down.replaceAll(".", "\\.")} yet`));
    assert.match(result.stdout, /kvstore get: Cannot reach /, "each command fails at once rather than waiting");
    assert.ok(result.elapsedMs < 15_000, `left after ${result.elapsedMs} ms`);
  },
});

Deno.test({
  name: "on a terminal Ctrl-C interrupts the command running and the shell prompts again",
  ...opts,
  ignore: !hasScript(),
  fn: async () => {
    await using server = await startServer();
    await runKvstore(["set", "k", "still here", "--endpoint", server.address]);
    await using terminal = new TerminalSession(["shell", "--endpoint", server.address], {
      env: { KVSTORE_HISTFILE: "" },
    });
    const prompt = new RegExp(`${server.address.replaceAll(".", "\\.")}> `);
    await terminal.waitFor(prompt);
    // A command that runs until stopped: Ctrl-C must end it, not only clear the line.
    let from = terminal.output.length;
    await terminal.type("health --watch\n");
    await terminal.waitFor(/Z SERVING\r?\n/, { from });
    from = terminal.output.length;
    await terminal.type("\x03");
    await terminal.waitFor(/kvstore health: Interrupted\r?\n/, { from });
    await terminal.waitFor(prompt, { from });
    from = terminal.output.length;
    await terminal.type("get k\n");
    await terminal.waitFor(/still here\r?\n/, { from });
    // A call that blocks (Wait for a replica the node does not have) is given up too.
    from = terminal.output.length;
    await terminal.type("wait 1 0\n");
    // The line's echo means the shell has read it: the Ctrl-C comes in a later read.
    await terminal.waitFor(/wait 1 0\r*\n/, { from });
    await terminal.type("\x03");
    await terminal.waitFor(/kvstore wait: Interrupted\r?\n/, { from });
    await terminal.waitFor(prompt, { from });
    await terminal.type("quit\n");
    assert.equal((await terminal.exited).code, 0, terminal.output);
  },
});
