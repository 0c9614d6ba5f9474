/**
 * Real kvstore processes for integration tests.
 *
 * A server is spawned from `$KVSTORE_BIN` when set (the compiled binary, or the bundle's
 * wrapper), else with `deno run -A main.ts` using the Deno running the tests. It binds
 * 127.0.0.1 on a port the OS picks (port 0; the port is read back from its "Listening
 * on" log line), runs in its own temporary directory, and is killed by PID when the
 * test's `await using` scope ends, even when the test fails. Every wait has a bound.
 *
 * @module
 */

import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const MAIN_TS = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** How long a server may take to start listening; generous for a loaded CI machine. */
export const SERVER_READY_TIMEOUT_MS = 30_000;

/** How long a process may take to exit after a signal before it is killed. */
export const PROCESS_EXIT_TIMEOUT_MS = 15_000;

/** The command that runs kvstore with `args`; with `shellSetup` (see
 * {@linkcode fileSizeLimit}, {@linkcode openFilesLimit}), a shell runs that first and then
 * execs kvstore in its place, so the PID is kvstore's. */
export function kvstoreCommand(args: readonly string[], shellSetup?: string): { command: string; args: string[] } {
  const bin = kvstoreBin(Deno.env.get("KVSTORE_BIN"), Deno.cwd());
  const command = bin !== null
    ? { command: bin, args: [...args] }
    : { command: Deno.execPath(), args: ["run", "-A", "--quiet", MAIN_TS, ...args] };
  if (shellSetup === undefined) return command;
  return { command: "sh", args: ["-c", `${shellSetup}; exec "$@"`, "sh", command.command, ...command.args] };
}

/** Shell setup that caps each file kvstore writes at `blocks` 512-byte blocks (as dash
 * counts them): a write past it fails with EFBIG, as on a full disk, instead of the
 * process dying of SIGXFSZ. */
export function fileSizeLimit(blocks: number): string {
  return `trap '' XFSZ; ulimit -f ${blocks}`;
}

/** Shell setup that lowers the open-file limit to `count` descriptors. */
export function openFilesLimit(count: number): string {
  return `ulimit -n ${count}`;
}

/** The program `$KVSTORE_BIN` names, or null when it is unset or empty. A relative path
 * (`./kvstore`, `dist/kvstore`) is made absolute against `cwd`, where the tests were
 * started: servers run in their own temporary directories, and a relative program path
 * would be looked up from there. A bare name (`kvstore`) is left for the PATH search. */
export function kvstoreBin(bin: string | undefined, cwd: string): string | null {
  if (bin === undefined || bin === "") return null;
  return bin.includes("/") ? resolve(cwd, bin) : bin;
}

export interface StartOptions {
  /** Flags besides --address and --data-dir. */
  readonly args?: readonly string[];
  readonly env?: Record<string, string>;
  /** A data directory to reuse (e.g. across a restart); a fresh temp dir otherwise. */
  readonly dataDir?: string;
  /** The address to listen on; 127.0.0.1:0 otherwise. */
  readonly address?: string;
  readonly readyTimeoutMs?: number;
  /** Shell commands to run before kvstore (see {@linkcode kvstoreCommand}). */
  readonly shellSetup?: string;
}

/** A running kvstore server. */
export class ServerProcess implements AsyncDisposable {
  /** host:port the server listens on. */
  address = "";
  readonly dataDir: string;
  readonly #ownsDataDir: boolean;
  readonly #child: Deno.ChildProcess;
  #stderr = "";
  #stdout = "";
  #listeners: (() => void)[] = [];
  #status: Deno.CommandStatus | null = null;
  readonly exited: Promise<Deno.CommandStatus>;

  constructor(child: Deno.ChildProcess, dataDir: string, ownsDataDir: boolean) {
    this.#child = child;
    this.dataDir = dataDir;
    this.#ownsDataDir = ownsDataDir;
    this.exited = child.status.then((status) => {
      this.#status = status;
      this.#notify();
      return status;
    });
    void this.#pump(child.stderr, (text) => this.#stderr += text);
    void this.#pump(child.stdout, (text) => this.#stdout += text);
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Everything the server has written to stderr (its log) so far. */
  get stderr(): string {
    return this.#stderr;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get running(): boolean {
    return this.#status === null;
  }

  /** Resolves with the first match of `pattern` in the log, waiting up to `timeoutMs`.
   * Rejects early if the process exits first. */
  waitForLog(pattern: RegExp, timeoutMs = SERVER_READY_TIMEOUT_MS): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = this.#stderr.match(pattern);
        if (match !== null) {
          done();
          resolve(match);
        } else if (this.#status !== null) {
          done();
          reject(new Error(`kvstore exited (code ${this.#status.code}) before logging ${pattern}:\n${this.#stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${pattern} in the log:\n${this.#stderr}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#listeners = this.#listeners.filter((listener) => listener !== check);
      };
      this.#listeners.push(check);
      check();
    });
  }

  /** Sends `signal` and waits for the process to exit; kills it if it does not. */
  async stop(signal: Deno.Signal = "SIGTERM", timeoutMs = PROCESS_EXIT_TIMEOUT_MS): Promise<Deno.CommandStatus> {
    if (this.#status !== null) return this.#status;
    this.signal(signal);
    const timer = setTimeout(() => this.signal("SIGKILL"), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process at once (a crash, as far as the server can tell). */
  kill(): Promise<Deno.CommandStatus> {
    return this.stop("SIGKILL");
  }

  signal(signal: Deno.Signal): void {
    if (this.#status !== null) return;
    try {
      this.#child.kill(signal);
    } catch {
      // Already gone.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
    if (this.#ownsDataDir) await Deno.remove(this.dataDir, { recursive: true }).catch(() => {});
  }

  async #pump(stream: ReadableStream<Uint8Array>, append: (text: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        append(decoder.decode(chunk, { stream: true }));
        this.#notify();
      }
    } catch {
      // The stream closes with the process.
    }
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }
}

/** Spawns kvstore with `args` and the environment, in `cwd`, capturing its output. */
export function spawnKvstore(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; shellSetup?: string } = {},
): Deno.ChildProcess {
  const { command, args: fullArgs } = kvstoreCommand(args, options.shellSetup);
  return spawnProcess(command, fullArgs, { ...options, stdin: "null" });
}

/** Spawns `command` with NO_COLOR set and its output captured. */
function spawnProcess(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; stdin: "null" | "piped" },
): Deno.ChildProcess {
  return new Deno.Command(command, {
    args: [...args],
    cwd: options.cwd,
    env: { NO_COLOR: "1", ...options.env },
    stdin: options.stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Starts a server and resolves once it listens. */
export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "kvstore-test-" });
  const args = [
    "--address",
    options.address ?? "127.0.0.1:0",
    "--data-dir",
    dataDir,
    ...(options.args ?? []),
  ];
  const server = new ServerProcess(
    spawnKvstore(args, { cwd: ownsDataDir ? dataDir : undefined, env: options.env, shellSetup: options.shellSetup }),
    dataDir,
    ownsDataDir,
  );
  try {
    // The address ends at a space (text logs) or a quote (JSON logs).
    const match = await server.waitForLog(/Listening on ([^\s"]+:\d+)/, options.readyTimeoutMs);
    server.address = match[1].replace("0.0.0.0", "127.0.0.1");
    return server;
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
}

/** The outcome of a short-lived kvstore command. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time until exit, in ms. */
  readonly elapsedMs: number;
}

/** How a short-lived process is run. */
export interface RunOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  /** The process is killed after this long, in ms (default PROCESS_EXIT_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /** Written to standard input, which is then closed; without it, stdin is /dev/null. */
  readonly input?: string | Uint8Array;
  /** Pause this long, in ms, before each line of `input` and after the last, as a person
   * typing at a terminal gives a program one line at a time (default 0: all at once). */
  readonly linePauseMs?: number;
}

/** Runs kvstore to completion (killing it after `timeoutMs`) and returns its output. */
export function runKvstore(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const { command, args: fullArgs } = kvstoreCommand(args);
  return runProcess(command, fullArgs, options);
}

/** Runs `command` to completion (killing it after `timeoutMs`), feeding it `input`, and
 * returns its output. */
export async function runProcess(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const started = performance.now();
  const child = spawnProcess(command, args, { ...options, stdin: options.input === undefined ? "null" : "piped" });
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, options.timeoutMs ?? PROCESS_EXIT_TIMEOUT_MS);
  try {
    // Output is collected while the input is written, so a child that answers before
    // reading all its input never blocks on a full stdout pipe.
    const output = child.output();
    if (options.input !== undefined) await feed(child.stdin, options.input, options.linePauseMs ?? 0);
    const { code, stdout, stderr } = await output;
    const decoder = new TextDecoder();
    return {
      code,
      stdout: decoder.decode(stdout),
      stderr: decoder.decode(stderr),
      elapsedMs: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Writes `input` to a child's stdin and closes it. A child may exit without reading
 * all of it (a command that fails first): what it did not read is dropped. */
async function feed(stdin: WritableStream<Uint8Array>, input: string | Uint8Array, linePauseMs: number): Promise<void> {
  const bytes = typeof input === "string" ? new TextEncoder().encode(input) : input;
  const writer = stdin.getWriter();
  const pause = () => new Promise((resolve) => setTimeout(resolve, linePauseMs));
  try {
    if (linePauseMs === 0) {
      await writer.write(bytes);
    } else {
      for (const line of new TextDecoder().decode(bytes).split(/(?<=\n)/)) {
        await pause();
        await writer.write(new TextEncoder().encode(line));
      }
      await pause();
    }
    await writer.close();
  } catch {
    // The child closed its end: it has exited, or stopped reading.
  }
}

/** A port that was free a moment ago on 127.0.0.1, for tests that must name an address
 * before the server starts (push replication). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Polls `condition` every `intervalMs` until it holds, failing after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * The bytes received and not yet read on each TCP connection to 127.0.0.1:`port`
 * (Linux's /proc/net/tcp rx_queue), one number per connection. For a server stopped
 * with SIGSTOP, a connection with bytes waiting holds a request that was sent to it:
 * the sign a test waits for before it kills the server with that request in flight.
 */
export async function unreadBytesAt(port: number): Promise<number[]> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const ESTABLISHED = "01";
  const unread: number[] = [];
  for (const line of (await Deno.readTextFile("/proc/net/tcp")).split("\n").slice(1)) {
    const [, localAddress, , state, queues] = line.trim().split(/\s+/);
    if (localAddress !== local || state !== ESTABLISHED) continue;
    unread.push(parseInt(queues.split(":")[1], 16));
  }
  return unread;
}
