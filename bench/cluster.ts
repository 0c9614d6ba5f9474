// deno-lint-ignore-file no-console -- a benchmark reports on the terminal
/**
 * A sharded cluster's figures: throughput through `kvstore router` with 1, 2 and 4
 * shards next to a single node reached directly, and how fast rebalancing moves keys
 * (idle, and under a mixed load whose throughput and latency it reports).
 *
 * The 2-core limit: every server process (the router and each shard) is pinned to core
 * 0 and the load driver to core 1, as in bench/throughput.ts. So the cluster's servers
 * share one core, and more shards cannot add throughput here: the figures measure what
 * the router's hop costs and that splitting the keyspace costs little, not how a
 * cluster scales. On real deployments each shard gets its own machine (or cores), and
 * capacity grows with the shard count until the router, or the clients, saturate; run
 * several routers behind a load balancer for more than one router can carry.
 * A benchmark, never a test: it fails on nothing but errors.
 *
 * Usage: deno task bench:cluster [--duration-ms 3000] [--rounds 2] [--keys 100000]
 *          [--connections 8] [--concurrency 8] [--value-bytes 100]
 */

import { KvClient } from "../src/client/client.ts";
import { ClusterClient } from "../src/client/cluster_client.ts";
import type { MigrationStatus } from "../src/transport/messages.ts";
import { drive } from "./lib/driver.ts";
import type { LoadResult, Workload } from "./lib/load.ts";
import { type BenchProcess, canPin, cpuSeconds, startDenoServer } from "./lib/processes.ts";
import { describeMachine, markdownTable, writeResults } from "./lib/report.ts";
import { parseLoadSettings } from "./lib/settings.ts";

const { settings, extra } = parseLoadSettings(Deno.args, {
  durationMs: 3000,
  rounds: 2,
  connections: 8,
  concurrency: 8,
  valueBytes: 100,
  keySpace: 10_000,
}, { keys: "100000" });
const { rounds } = settings;
const rebalanceKeys = Number(extra.keys);
const SERVER_CORE = 0;
const DRIVER_CORE = 1;
const workloads: Workload[] = ["set", "get", "mixed"];

const temporary: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kvstore-bench-cluster-" });
  temporary.push(dir);
  return dir;
}

async function startShard(): Promise<BenchProcess> {
  return await startDenoServer("main.ts", ["--address", "127.0.0.1:0", "--data-dir", await tempDir()], SERVER_CORE);
}

async function startRouter(shards: readonly BenchProcess[], extra: string[] = []): Promise<BenchProcess> {
  return await startDenoServer("main.ts", [
    "router",
    "--address",
    "127.0.0.1:0",
    "--data-dir",
    await tempDir(),
    "--shards",
    shards.map((shard) => shard.address).join(","),
    ...extra,
  ], SERVER_CORE);
}

/** A setup to measure: the address the driver calls, and every server process. */
interface Setup {
  readonly label: string;
  readonly address: string;
  readonly router: BenchProcess | null;
  readonly shards: BenchProcess[];
}

interface Measured extends LoadResult {
  readonly routerCpuPercent: number;
  readonly shardsCpuPercent: number;
  /** Calls answered per second of CPU used by all the servers (router and shards):
   * steadier than ops/s on a shared machine, and the cost of a call through the setup. */
  readonly opsPerServerCpuSecond: number;
}

async function measure(setup: Setup, workload: Workload): Promise<Measured> {
  const cpu = () => ({
    router: setup.router === null ? 0 : cpuSeconds(setup.router.pid),
    shards: setup.shards.reduce((sum, shard) => sum + cpuSeconds(shard.pid), 0),
  });
  const before = cpu();
  const started = performance.now();
  const load = await drive({ ...settings, address: setup.address, workload, core: DRIVER_CORE });
  const seconds = (performance.now() - started) / 1000;
  const after = cpu();
  const serverCpuSeconds = after.router - before.router + after.shards - before.shards;
  return {
    ...load,
    routerCpuPercent: Math.round((100 * (after.router - before.router)) / seconds),
    shardsCpuPercent: Math.round((100 * (after.shards - before.shards)) / seconds),
    opsPerServerCpuSecond: Math.round(load.ops / serverCpuSeconds),
  };
}

function median(numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Writes `count` keys through `address` in MSet batches. */
async function preload(address: string, count: number): Promise<void> {
  using client = new KvClient(address, { deadlineMs: 60_000 });
  const value = "v".repeat(settings.valueBytes);
  for (let start = 0; start < count; start += 5000) {
    const end = Math.min(count, start + 5000);
    const entries = [];
    for (let i = start; i < end; i++) entries.push({ key: `key:${i}`, value, ttlMs: i % 4 === 0 ? 3_600_000 : 0 });
    await client.mset(entries);
  }
}

/** Runs a change to completion and returns the final status and the wall time. */
async function timeChange(
  changes: AsyncGenerator<MigrationStatus>,
): Promise<{ status: MigrationStatus; seconds: number }> {
  const started = performance.now();
  let last: MigrationStatus | undefined;
  for await (const status of changes) last = status;
  if (last?.state !== "done") throw new Error(`the change did not finish: ${JSON.stringify(last)}`);
  return { status: last, seconds: (performance.now() - started) / 1000 };
}

/** The machine is shared: the load average when the run began says how quiet it was. */
const loadAverageAtStart = Deno.loadavg().map((load) => load.toFixed(2)).join(", ");
const throughputRows: Record<string, string | number>[] = [];
const rebalanceRows: Record<string, string | number>[] = [];
try {
  // ---- Throughput ----------------------------------------------------------------
  for (const shardCount of [0, 1, 2, 4]) {
    const shards = await Promise.all(Array.from({ length: Math.max(1, shardCount) }, () => startShard()));
    const router = shardCount === 0 ? null : await startRouter(shards);
    const setup: Setup = {
      label: shardCount === 0
        ? "1 node, direct (no router)"
        : `router + ${shardCount} shard${shardCount > 1 ? "s" : ""}`,
      address: router?.address ?? shards[0].address,
      router,
      shards,
    };
    try {
      await drive({
        ...settings,
        address: setup.address,
        workload: "set",
        core: DRIVER_CORE,
        preload: true,
        durationMs: 500,
      });
      for (const workload of workloads) {
        const samples: Measured[] = [];
        for (let round = 0; round < rounds; round++) samples.push(await measure(setup, workload));
        const pick = (field: keyof Measured) => median(samples.map((sample) => sample[field] as number));
        const ms = (field: keyof Measured) => Math.round(pick(field) * 10) / 10;
        const row = {
          setup: setup.label,
          workload,
          "ops/s": Math.round(pick("opsPerSecond")),
          "p50 ms": ms("p50Ms"),
          "p99 ms": ms("p99Ms"),
          errors: samples.reduce((sum, sample) => sum + sample.errors, 0),
          "router CPU": router === null ? "-" : `${Math.round(pick("routerCpuPercent"))}%`,
          "shards CPU": `${Math.round(pick("shardsCpuPercent"))}%`,
          "calls per server CPU-s": Math.round(pick("opsPerServerCpuSecond")),
        };
        console.error(JSON.stringify(row));
        throughputRows.push(row);
      }
    } finally {
      await Promise.all([router, ...shards].map((process) => process?.stop()));
    }
  }

  // ---- Rebalancing -----------------------------------------------------------------
  const shards = await Promise.all(Array.from({ length: 3 }, () => startShard()));
  const router = await startRouter(shards);
  const extra = await Promise.all([startShard(), startShard()]);
  try {
    await preload(router.address, rebalanceKeys);
    using admin = new ClusterClient(router.address, { progressIdleMs: 60_000 });
    const record = (change: string, load: string, result: { status: MigrationStatus; seconds: number }) => {
      const moved = Number(result.status.keys_moved);
      const row = {
        change,
        "keys in cluster": rebalanceKeys,
        "keys moved": moved,
        seconds: Math.round(result.seconds * 100) / 100,
        "keys/s": Math.round(moved / result.seconds),
        "load during the move": load,
      };
      console.error(JSON.stringify(row));
      rebalanceRows.push(row);
    };
    record("add a 4th shard", "none", await timeChange(admin.addShard(extra[0].address)));
    record("remove it again", "none", await timeChange(admin.removeShard(extra[0].address)));

    // The same change while a mixed load runs through the router.
    const loadMs = 8000;
    const loading = drive({
      ...settings,
      address: router.address,
      workload: "mixed",
      core: DRIVER_CORE,
      durationMs: loadMs,
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const change = await timeChange(admin.addShard(extra[1].address));
    const load = await loading;
    record(
      "add a 4th shard",
      `mixed, ${settings.connections}x${settings.concurrency}: ${load.opsPerSecond} ops/s over ${loadMs / 1000} s, ` +
        `p99 ${load.p99Ms} ms, ${load.errors} errors`,
      change,
    );
  } finally {
    await Promise.all([router, ...shards, ...extra].map((process) => process.stop()));
  }

  const machine = describeMachine();
  const markdown = [
    "# Cluster: throughput through the router, and rebalancing speed",
    "",
    `Date: ${new Date().toISOString()}  `,
    `Machine: ${machine.hostname}, ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ` +
    `${machine.os}, Deno ${machine.deno}  `,
    `Load: ${settings.connections} connections x ${settings.concurrency} calls in flight, ${settings.durationMs} ms ` +
    `per workload, median of ${rounds} rounds, ${settings.valueBytes}-byte values, ${settings.keySpace} keys  `,
    `Load average (1, 5, 15 min) when the run began: ${loadAverageAtStart} (other work on the machine skews ` +
    `the figures when it is above 0)  `,
    `Pinning: ${
      canPin()
        ? `every server (router and shards) on core ${SERVER_CORE}, load driver on core ${DRIVER_CORE}`
        : "none (no taskset)"
    }`,
    "",
    "## Throughput",
    "",
    markdownTable(throughputRows),
    "",
    "On this 2-core machine all servers share one core, so more shards cannot add throughput: each call " +
    "through the router costs a second gRPC hop (router CPU plus shard CPU per call, against one node's CPU " +
    "alone), and adding shards only adds processes competing for the same core. What the table shows is the " +
    "router's overhead (compare calls per server CPU-second, which other work on the machine disturbs less than " +
    "ops/s) and that splitting the keyspace costs little; capacity grows with shards when each has its own " +
    "machine. Server CPU well below 100% means the servers were not the limit: the load driver, or other work " +
    "on the machine, was.",
    "",
    "## Rebalancing",
    "",
    `3 shards holding ${rebalanceKeys} keys (${settings.valueBytes}-byte values, a quarter with TTLs); a 4th ` +
    "shard is added and removed with the router's defaults (500 keys a step, no pause).",
    "",
    markdownTable(rebalanceRows),
    "",
  ].join("\n");
  const path = await writeResults("cluster", markdown, {
    settings,
    rounds,
    rebalanceKeys,
    throughputRows,
    rebalanceRows,
  });
  console.log(markdown);
  console.log(`Recorded in ${path}`);
} finally {
  for (const dir of temporary) await Deno.remove(dir, { recursive: true }).catch(() => {});
}
