// deno-lint-ignore-file no-console -- a soak tool reports on the terminal
/**
 * Soak tools: the long-running load and the sampling that find leaks a test suite, whose
 * tests last seconds, cannot see (bench/results/soak-*.md holds what they found).
 *
 *   deno run -A bench/soak.ts load --endpoint E --workload W [--rate N] [--seconds S]
 *   deno run -A bench/soak.ts sample --watch NAME=ENDPOINT[@PID] ... [--interval-s S] [--seconds S]
 *   deno run -A bench/soak.ts hold --endpoint E [--connections N]
 *
 * Workloads (`load`), each paced to about --rate calls a second:
 * - ttl: SET a fresh key, then EXPIRE it 1-5 s out (never touched again), plus GETs and
 *   SETs over 10,000 lasting keys: memory must plateau, the sweep must reclaim.
 * - writes: SETs and GETs over 10,000 lasting keys (load for replicas and routers);
 *   failures are counted, not fatal, so a shard or master may come and go.
 * - churn: a client opens its own connection, makes three calls and closes it, again and
 *   again; every --vanish-every-s seconds a `hold` process opens 20 connections and is
 *   killed with SIGKILL, so its connections vanish without a goodbye.
 * - scan: Scan pages of 10 keys whose cursors are never followed (abandoned), beside
 *   the writes workload.
 *
 * `sample` prints one line per watched process every --interval-s: RSS, the C allocator's
 * main arena and descriptors from /proc (the pid comes from Info, or @PID), and from
 * Info (when it answers) heap, connections, keys, the log's size and the backlog's. A
 * process restarted under the same address is followed by its new pid.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { KvClient } from "../src/client/client.ts";

const flags = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    endpoint: { type: "string", default: "127.0.0.1:50051" },
    workload: { type: "string", default: "ttl" },
    rate: { type: "string", default: "300" },
    seconds: { type: "string", default: "300" },
    watch: { type: "string", multiple: true, default: [] },
    "interval-s": { type: "string", default: "15" },
    connections: { type: "string", default: "20" },
    "vanish-every-s": { type: "string", default: "15" },
  },
});

const [command] = flags.positionals;
const seconds = Number(flags.values.seconds);
const endAtMs = Date.now() + seconds * 1000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const VALUE = "v".repeat(100);
const LASTING_KEYS = 10_000;

interface Counts {
  calls: number;
  errors: number;
  lastError: string;
}

/** Runs `step` about `rate` times a second until the end, in 8 concurrent lanes. */
async function paced(rate: number, step: (i: number) => Promise<void>, counts: Counts): Promise<void> {
  const lanes = 8;
  const perLaneMs = (1000 * lanes) / rate;
  let next = 0;
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (Date.now() < endAtMs) {
      const startedMs = Date.now();
      try {
        await step(next++);
      } catch (error) {
        counts.errors++;
        counts.lastError = error instanceof Error ? error.message : String(error);
      }
      counts.calls++;
      await sleep(Math.max(0, perLaneMs - (Date.now() - startedMs)));
    }
  }));
}

async function load(): Promise<void> {
  const endpoint = flags.values.endpoint!;
  const rate = Number(flags.values.rate);
  const counts: Counts = { calls: 0, errors: 0, lastError: "" };
  const report = setInterval(() => {
    console.error(
      `${new Date().toISOString()} load: steps=${counts.calls} errors=${counts.errors} ${counts.lastError}`,
    );
    counts.lastError = "";
  }, 30_000);
  const client = new KvClient(endpoint, { deadlineMs: 3000 });
  const lasting = (i: number) => `lasting:${i % LASTING_KEYS}`;
  const run = Date.now().toString(36);
  try {
    switch (flags.values.workload) {
      case "ttl":
        await paced(rate / 3, async (i) => {
          const key = `ttl:${run}:${i}`;
          await client.set(key, VALUE);
          await client.expire(key, 1 + (i % 5));
          if (i % 2 === 0) await client.get(lasting(i * 7919));
          else await client.set(lasting(i * 7919), VALUE);
        }, counts);
        break;
      case "writes":
        await paced(rate, async (i) => {
          if (i % 2 === 0) await client.set(lasting(i * 7919), `${VALUE}${i}`);
          else await client.get(lasting(i * 7919));
        }, counts);
        break;
      case "churn": {
        const vanishEveryMs = Number(flags.values["vanish-every-s"]) * 1000;
        const vanishing = vanishEveryMs > 0 ? vanishLoop(endpoint, vanishEveryMs) : Promise.resolve();
        await paced(rate / 3, async (i) => {
          const own = new KvClient(endpoint, { deadlineMs: 3000, ownConnection: true });
          try {
            await own.set(lasting(i), VALUE);
            await own.get(lasting(i + 1));
            await own.contains(lasting(i + 2));
          } finally {
            own.close();
          }
        }, counts);
        await vanishing;
        break;
      }
      case "scan":
        await paced(rate, async (i) => {
          if (i % 4 === 0) await client.scan({ limit: 10 });
          else if (i % 2 === 0) await client.set(lasting(i * 7919), VALUE);
          else await client.get(lasting(i * 7919));
        }, counts);
        break;
      default:
        throw new Error(`soak: Unknown workload ${JSON.stringify(flags.values.workload)}`);
    }
  } finally {
    clearInterval(report);
    client.close();
  }
  console.error(`load: done, steps=${counts.calls} errors=${counts.errors}`);
}

/** Every `everyMs`, a `hold` process opens connections and is killed with SIGKILL. */
async function vanishLoop(endpoint: string, everyMs: number): Promise<void> {
  while (Date.now() < endAtMs) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", new URL(import.meta.url).pathname, "hold", "--endpoint", endpoint],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    // "held" once its connections are open (or give up after 15 s).
    await Promise.race([reader.read(), sleep(15_000)]);
    child.kill("SIGKILL");
    await child.status;
    await sleep(everyMs);
  }
}

/** Opens --connections connections, makes a call on each, says "held" and waits. */
async function hold(): Promise<void> {
  const clients = Array.from(
    { length: Number(flags.values.connections) },
    () => new KvClient(flags.values.endpoint!, { ownConnection: true }),
  );
  await Promise.allSettled(clients.map((client, i) => client.get(`lasting:${i}`)));
  await Deno.stdout.write(new TextEncoder().encode("held\n"));
  await sleep(3_600_000);
}

interface ProcFigures {
  rssMiB: string;
  /** Resident part of the C allocator's main arena (the [heap] mapping): memory the
   * runtime's native code allocated, or freed and not yet given back to the OS. */
  arenaMiB: string;
  fds: string;
}

function procFigures(pid: number): ProcFigures {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    const smaps = Deno.readTextFileSync(`/proc/${pid}/smaps`);
    const arenaKb = Number(/\[heap\]\n(?:.*\n)*?Rss:\s+(\d+)/.exec(smaps)?.[1] ?? 0);
    let fds = 0;
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) fds++;
    return { rssMiB: (rssKb / 1024).toFixed(1), arenaMiB: (arenaKb / 1024).toFixed(1), fds: String(fds) };
  } catch {
    return { rssMiB: "-", arenaMiB: "-", fds: "-" };
  }
}

const MIB = 1024 * 1024;

async function sample(): Promise<void> {
  const watched = flags.values.watch!.map((spec) => {
    const match = /^([^=]+)=([^@]+)(?:@(\d+))?$/.exec(spec);
    if (match === null) throw new Error(`soak: Invalid --watch ${JSON.stringify(spec)}: expected NAME=ENDPOINT[@PID]`);
    return { name: match[1], client: new KvClient(match[2], { deadlineMs: 1000 }), pid: Number(match[3] ?? 0) };
  });
  const intervalMs = Number(flags.values["interval-s"]) * 1000;
  const startMs = Date.now();
  console.log("t_s\tname\trss_mib\tarena_mib\tfds\theap_mib\tconns\tkeys\texpiring\tlog_kib\tbacklog_kib\textra");
  while (true) {
    for (const watch of watched) {
      let line: string[];
      try {
        const info = await watch.client.info();
        // A process restarted under the same address has a new pid.
        watch.pid = Number(info.pid);
        const proc = procFigures(watch.pid);
        const extra = info.role === "replica"
          ? `link=${info.link_state} master_last_seq=${info.master_last_seq} last_seq=${info.last_seq}`
          : info.role === "master"
          ? `seq=${info.last_seq} replicas=${
            (info.replicas ?? []).map((replica) => `${replica.state}:${replica.acked_seq}`).join(",")
          }`
          : "";
        line = [
          proc.rssMiB,
          proc.arenaMiB,
          proc.fds,
          (Number(info.heap_used_bytes) / MIB).toFixed(1),
          String(info.connections),
          String(info.keys),
          String(info.expiring_keys),
          (Number(info.log_bytes) / 1024).toFixed(0),
          (Number(info.backlog_bytes) / 1024).toFixed(0),
          extra,
        ];
      } catch (error) {
        const proc = watch.pid === 0 ? { rssMiB: "-", arenaMiB: "-", fds: "-" } : procFigures(watch.pid);
        line = [
          proc.rssMiB,
          proc.arenaMiB,
          proc.fds,
          "-",
          "-",
          "-",
          "-",
          "-",
          "-",
          `info failed: ${(error as Error).message}`,
        ];
      }
      console.log([((Date.now() - startMs) / 1000).toFixed(0), watch.name, ...line].join("\t"));
    }
    if (Date.now() + intervalMs > endAtMs) break;
    await sleep(intervalMs);
  }
  for (const watch of watched) watch.client.close();
}

switch (command) {
  case "load":
    await load();
    break;
  case "sample":
    await sample();
    break;
  case "hold":
    await hold();
    break;
  default:
    console.error("usage: soak.ts load|sample|hold [flags] (see the top of bench/soak.ts)");
    Deno.exit(2);
}
