/**
 * Processes for benchmarks: servers pinned to one core (when taskset exists), so the
 * load generator gets the other core of a 2-core machine and the figures measure the
 * server rather than the competition between the two.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

let tasksetAvailable: boolean | undefined;

/** Whether `taskset` can pin processes here. */
export function canPin(): boolean {
  if (tasksetAvailable === undefined) {
    try {
      tasksetAvailable = new Deno.Command("taskset", { args: ["-c", "0", "true"] }).outputSync().success;
    } catch {
      tasksetAvailable = false;
    }
  }
  return tasksetAvailable;
}

export interface BenchProcess extends AsyncDisposable {
  readonly address: string;
  readonly pid: number;
  readonly child: Deno.ChildProcess;
  stop(): Promise<void>;
}

/** Starts a Deno script (kvstore's main.ts or a bench server) on `core`, waits for its
 * "Listening on" line and returns its address. */
export async function startDenoServer(script: string, args: string[], core: number | null): Promise<BenchProcess> {
  const deno = Deno.execPath();
  const denoArgs = ["run", "-A", "--quiet", `${REPO_ROOT}${script}`, ...args];
  const pinned = core !== null && canPin();
  const child = new Deno.Command(pinned ? "taskset" : deno, {
    args: pinned ? ["-c", String(core), deno, ...denoArgs] : denoArgs,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const decoder = new TextDecoder();
  let log = "";
  const reader = child.stderr.getReader();
  const timeout = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${script} exited (${JSON.stringify(await child.status)}) before listening:\n${log}`);
      log += decoder.decode(value, { stream: true });
      const match = /Listening on (\S+:\d+)/.exec(log);
      if (match !== null) {
        // Keep draining stderr so the server never blocks on a full pipe.
        void (async () => {
          try {
            while (!(await reader.read()).done) { /* discard */ }
          } catch { /* closed */ }
        })();
        const address = match[1].replace("0.0.0.0", "127.0.0.1");
        const stop = async () => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
          await child.status;
        };
        return { address, pid: child.pid, child, stop, [Symbol.asyncDispose]: stop };
      }
    }
  } finally {
    clearTimeout(timeout);
  }
}

/** CPU time (user + system) a process has used, in seconds, from /proc; NaN elsewhere. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces) start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const userTicks = Number(fields[11]);
    const systemTicks = Number(fields[12]);
    return (userTicks + systemTicks) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return NaN;
  }
}

/** Linux's USER_HZ, the unit of /proc/PID/stat times; 100 on every mainstream build. */
const CLOCK_TICKS_PER_SECOND = 100;
