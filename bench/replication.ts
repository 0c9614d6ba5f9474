// deno-lint-ignore-file no-console -- a benchmark reports on the terminal
/**
 * Replication: the master's write throughput with 0 and with 2 replicas attached, and
 * replication lag under that sustained write load.
 *
 * Each round starts a fresh master pinned to core 0 and drives a set workload at it from
 * a load driver pinned to core 1, first with no replica, then with two replicas (pulling
 * with Sync; unpinned, so they take CPU from both cores, as they would on a shared
 * host). The master's CPU time per write is its cost of replication, independent of
 * whether the driver or the machine was the limit.
 *
 * Lag is measured end to end, as a user would see it: while the load runs, a probe
 * writes a key to the master every PROBE_INTERVAL_MS and, from the moment the master
 * acknowledges it, reads it from each replica in a tight loop until it is there. The
 * time until it is there is one lag sample (its resolution is one Get round trip).
 * A benchmark, never a test: it fails on nothing but errors.
 *
 * Usage: deno task bench:replication [--duration-ms 5000] [--rounds 3] [--connections 8]
 *          [--concurrency 8] [--value-bytes 100] [--key-space 10000]
 */

import { KvClient } from "../src/client/client.ts";
import { drive } from "./lib/driver.ts";
import { quantile } from "./lib/load.ts";
import type { LoadResult } from "./lib/load.ts";
import { type BenchProcess, canPin, cpuSeconds, startDenoServer } from "./lib/processes.ts";
import { describeMachine, markdownTable, writeResults } from "./lib/report.ts";
import { parseLoadSettings } from "./lib/settings.ts";

const { settings } = parseLoadSettings(Deno.args, {
  durationMs: 5000,
  rounds: 3,
  connections: 8,
  concurrency: 8,
  valueBytes: 100,
  keySpace: 10_000,
});
const { rounds } = settings;
const MASTER_CORE = 0;
const DRIVER_CORE = 1;
/** Time between lag probes, in ms. */
const PROBE_INTERVAL_MS = 20;
/** A probe not seen on a replica after this long counts as this long, in ms. */
const PROBE_TIMEOUT_MS = 10_000;

interface Measured {
  readonly replicas: number;
  readonly load: LoadResult;
  readonly masterCpuPercent: number;
  readonly masterCpuMsPerKiloWrites: number;
  /** Lag samples in ms, all replicas together. */
  readonly lagMs: number[];
}

async function withNodes<T>(replicaCount: number, use: (master: BenchProcess) => Promise<T>): Promise<T> {
  const dirs: string[] = [];
  const processes: BenchProcess[] = [];
  const dataDir = async () => {
    const dir = await Deno.makeTempDir({ prefix: "kvstore-bench-repl-" });
    dirs.push(dir);
    return dir;
  };
  try {
    const master = await startDenoServer(
      "main.ts",
      ["--address", "127.0.0.1:0", "--data-dir", await dataDir()],
      MASTER_CORE,
    );
    processes.push(master);
    for (let i = 0; i < replicaCount; i++) {
      processes.push(
        await startDenoServer(
          "main.ts",
          ["--replica", "--master-address", master.address, "--address", "127.0.0.1:0", "--data-dir", await dataDir()],
          null,
        ),
      );
    }
    await waitForReplicas(master.address, replicaCount);
    return await use(master);
  } finally {
    for (const process of processes) await process.stop();
    for (const dir of dirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function waitForReplicas(address: string, count: number): Promise<void> {
  using client = new KvClient(address);
  const deadline = Date.now() + 30_000;
  while (((await client.info()).replicas ?? []).length < count) {
    if (Date.now() > deadline) throw new Error(`bench: ${count} replicas did not attach to ${address}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Writes a probe key to the master now and then, and times how long each takes to be
 * readable on every replica, until `isDone()`. */
async function probeLag(masterAddress: string, replicaAddresses: string[], isDone: () => boolean): Promise<number[]> {
  using writer = new KvClient(masterAddress, { deadlineMs: 30_000 });
  const readers = replicaAddresses.map((address) => new KvClient(address, { deadlineMs: 30_000 }));
  const samples: number[] = [];
  try {
    for (let n = 0; !isDone(); n++) {
      const key = `probe:${n}`;
      await writer.set(key, "x");
      const ackedAt = performance.now();
      await Promise.all(readers.map(async (reader) => {
        while ((await reader.get(key)) === undefined && performance.now() - ackedAt < PROBE_TIMEOUT_MS) {
          // Read again at once: the loop's resolution is one round trip.
        }
        samples.push(performance.now() - ackedAt);
      }));
      await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
    }
  } finally {
    for (const reader of readers) reader.close();
  }
  return samples;
}

async function measure(replicaCount: number): Promise<Measured> {
  return await withNodes(replicaCount, async (master) => {
    using client = new KvClient(master.address);
    const replicaAddresses = ((await client.info()).replicas ?? []).map((replica) => replica.address);
    // Warm up: fill the key space and let the JIT compile the write path (and, with
    // replicas, the replication path) before anything is measured.
    await drive({
      ...settings,
      address: master.address,
      workload: "set",
      core: DRIVER_CORE,
      preload: true,
      durationMs: 1000,
    });
    const cpuBefore = cpuSeconds(master.pid);
    const wallBefore = performance.now();
    let loadDone = false;
    const lag = replicaCount === 0 ? Promise.resolve([]) : probeLag(master.address, replicaAddresses, () => loadDone);
    const load = await drive({ ...settings, address: master.address, workload: "set", core: DRIVER_CORE });
    loadDone = true;
    const cpuUsed = cpuSeconds(master.pid) - cpuBefore;
    const wallSeconds = (performance.now() - wallBefore) / 1000;
    return {
      replicas: replicaCount,
      load,
      masterCpuPercent: Math.round((100 * cpuUsed) / wallSeconds),
      masterCpuMsPerKiloWrites: round2((cpuUsed * 1_000_000) / load.ops),
      lagMs: await lag,
    };
  });
}

function median(numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const round2 = (value: number) => Math.round(value * 100) / 100;

/** The 1-minute load average, to tell a quiet machine from a shared, busy one. */
function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  } catch {
    return "unknown";
  }
}

const loadBefore = loadAverage();
const samples: Measured[] = [];
for (let round = 0; round < rounds; round++) {
  for (const replicaCount of [0, 2]) {
    const result = await measure(replicaCount);
    samples.push(result);
    const sortedLag = Float64Array.from(result.lagMs).sort();
    console.error(
      `round ${
        round + 1
      }, ${replicaCount} replicas: ${result.load.opsPerSecond} writes/s, p99 ${result.load.p99Ms} ms, ` +
        `master CPU ${result.masterCpuPercent}%` +
        (replicaCount > 0
          ? `, lag p50 ${round2(quantile(sortedLag, 0.5))} ms p99 ${round2(quantile(sortedLag, 0.99))} ms`
          : ""),
    );
  }
}

const rows = [0, 2].map((replicaCount) => {
  const mine = samples.filter((sample) => sample.replicas === replicaCount);
  const lag = Float64Array.from(mine.flatMap((sample) => sample.lagMs)).sort();
  return {
    replicas: replicaCount,
    "writes/s": median(mine.map((sample) => sample.load.opsPerSecond)),
    "write p50 ms": median(mine.map((sample) => sample.load.p50Ms)),
    "write p99 ms": median(mine.map((sample) => sample.load.p99Ms)),
    errors: mine.reduce((sum, sample) => sum + sample.load.errors, 0),
    "master CPU": `${median(mine.map((sample) => sample.masterCpuPercent))}%`,
    "master CPU ms per 1000 writes": median(mine.map((sample) => sample.masterCpuMsPerKiloWrites)),
    "lag samples": lag.length,
    "lag p50 ms": lag.length === 0 ? "-" : round2(quantile(lag, 0.5)),
    "lag p99 ms": lag.length === 0 ? "-" : round2(quantile(lag, 0.99)),
    "lag max ms": lag.length === 0 ? "-" : round2(lag[lag.length - 1]),
  };
});

const machine = describeMachine();
const markdown = [
  "# Replication: write throughput with 0 and 2 replicas, and replication lag",
  "",
  `Date: ${new Date().toISOString()}  `,
  `Machine: ${machine.hostname}, ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ` +
  `${machine.os}, Deno ${machine.deno}  `,
  `Load: set workload, ${settings.connections} connections x ${settings.concurrency} calls in flight, ` +
  `${settings.durationMs} ms per measurement, medians over ${rounds} rounds (lag: all samples of all rounds ` +
  `pooled), ${settings.valueBytes}-byte values, ${settings.keySpace} keys  `,
  `Pinning: ${
    canPin() ? `master on core ${MASTER_CORE}, load driver on core ${DRIVER_CORE}, replicas unpinned` : "none"
  }  `,
  `Load average (1 min) before and after: ${loadBefore}, ${loadAverage()} on ${machine.cpus} CPUs  `,
  `Lag: time from the master's acknowledgement of a probe write until a Get on the replica finds it, ` +
  `one probe every ${PROBE_INTERVAL_MS} ms per replica while the load runs`,
  "",
  markdownTable(rows),
  "",
  "On this 2-core machine the load driver and the replicas share the cores with the master, so writes/s with " +
  "replicas measures the whole machine; the master's CPU per 1000 writes is the cost replication adds to it.",
  "",
].join("\n");
const path = await writeResults("replication", markdown, { settings, rounds, rows });
console.log(markdown);
console.log(`Recorded in ${path}`);
