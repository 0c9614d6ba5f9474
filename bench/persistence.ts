// deno-lint-ignore-file no-console -- a benchmark reports on the terminal
/**
 * Durability figures: recovery time and file sizes for a large dataset, request latency
 * while a snapshot of it is written (next to the same load without one), and write
 * throughput under each --appendfsync policy.
 *
 * The server runs pinned to core 0 and the load driver (bench/load_driver.ts) to core 1,
 * as in bench/throughput.ts. A benchmark, never a test: it fails on nothing but errors.
 *
 * Usage: deno task bench:persistence [--keys 1000000] [--value-bytes 100]
 *          [--duration-ms 5000] [--connections 8] [--concurrency 8]
 */

import { parseArgs } from "node:util";
import { KvClient } from "../src/client/client.ts";
import { drive } from "./lib/driver.ts";
import type { LoadResult } from "./lib/load.ts";
import { type BenchProcess, canPin, cpuSeconds, startDenoServer } from "./lib/processes.ts";
import { describeMachine, markdownTable, writeResults } from "./lib/report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    keys: { type: "string", default: "1000000" },
    "value-bytes": { type: "string", default: "100" },
    "duration-ms": { type: "string", default: "5000" },
    connections: { type: "string", default: "8" },
    concurrency: { type: "string", default: "8" },
  },
});
const keys = Number(values.keys);
const valueBytes = Number(values["value-bytes"]);
const durationMs = Number(values["duration-ms"]);
const connections = Number(values.connections);
const concurrency = Number(values.concurrency);
const SERVER_CORE = 0;
const DRIVER_CORE = 1;
/** Entries per MSet while loading the dataset. */
const LOAD_BATCH_KEYS = 1000;

function serverArgs(dataDir: string, extra: string[] = []): string[] {
  return ["--address", "127.0.0.1:0", "--data-dir", dataDir, "--snapshot-interval-seconds", "0", ...extra];
}

async function fileBytes(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** Starts kvstore on `dataDir` and returns it with the time until it served, and the
 * load time it logged. */
async function timedStart(dataDir: string): Promise<{ server: BenchProcess; startMs: number }> {
  const started = performance.now();
  const server = await startDenoServer("main.ts", serverArgs(dataDir), SERVER_CORE);
  return { server, startMs: performance.now() - started };
}

/** Writes `keys` keys of `valueBytes` through MSet, four calls in flight. */
async function loadDataset(address: string): Promise<number> {
  const client = new KvClient(address, { deadlineMs: 120_000 });
  const value = "v".repeat(valueBytes);
  const started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < keys) {
      const start = next;
      next = Math.min(keys, next + LOAD_BATCH_KEYS);
      const entries = [];
      for (let i = start; i < next; i++) entries.push({ key: `key:${i}`, value });
      await client.mset(entries);
    }
  }));
  client.close();
  return performance.now() - started;
}

const driverSettings = { connections, concurrency, durationMs, valueBytes, keySpace: keys, core: DRIVER_CORE };

// 1. Recovery and file sizes.
const dataDir = await Deno.makeTempDir({ prefix: "kvstore-bench-persistence-", dir: "/var/tmp" });
const recovery: Record<string, string | number>[] = [];
const latency: Record<string, string | number>[] = [];
const throughput: Record<string, string | number>[] = [];
try {
  const empty = await Deno.makeTempDir({ prefix: "kvstore-bench-empty-", dir: "/var/tmp" });
  const baseline = await timedStart(empty);
  await baseline.server.stop();
  await Deno.remove(empty, { recursive: true });
  console.error(`empty start: ${seconds(baseline.startMs)}`);

  let server = await startDenoServer("main.ts", serverArgs(dataDir), SERVER_CORE);
  const loadMs = await loadDataset(server.address);
  const logBytes = await fileBytes(`${dataDir}/kvstore.aof`);
  console.error(`loaded ${keys} keys in ${seconds(loadMs)}; log ${mib(logBytes)}`);
  await server.stop();

  const fromLog = await timedStart(dataDir);
  server = fromLog.server;
  console.error(`start from the log alone: ${seconds(fromLog.startMs)}`);
  recovery.push({
    "what is loaded": `${keys} keys from kvstore.aof alone (${keys} records)`,
    "file bytes": `${mib(logBytes)} (kvstore.aof)`,
    "start to serving": seconds(fromLog.startMs),
    "of which loading": seconds(fromLog.startMs - baseline.startMs),
  });

  const client = new KvClient(server.address, { deadlineMs: 600_000 });
  const snapshot = await client.snapshot();
  const rdbBytes = await fileBytes(`${dataDir}/kvstore.rdb`);
  console.error(`snapshot: ${seconds(Number(snapshot.duration_ms))}, ${mib(rdbBytes)}`);
  await server.stop();

  const fromSnapshot = await timedStart(dataDir);
  server = fromSnapshot.server;
  console.error(`start from the snapshot: ${seconds(fromSnapshot.startMs)}`);
  recovery.push({
    "what is loaded": `${keys} keys from kvstore.rdb (log cut to ${await fileBytes(`${dataDir}/kvstore.aof`)} bytes)`,
    "file bytes": `${mib(rdbBytes)} (kvstore.rdb)`,
    "start to serving": seconds(fromSnapshot.startMs),
    "of which loading": seconds(fromSnapshot.startMs - baseline.startMs),
  });
  recovery.push({
    "what is loaded": `(writing that snapshot, with no other load)`,
    "file bytes": `${mib(rdbBytes)}`,
    "start to serving": "",
    "of which loading": `${seconds(Number(snapshot.duration_ms))} to write`,
  });

  // 2. Latency with and without a snapshot being written.
  const measure = async (label: string, duringSnapshots: boolean): Promise<LoadResult> => {
    let snapshots = 0;
    let snapshotMs = 0;
    let running = true;
    const snapshotter = duringSnapshots
      ? (async () => {
        const snapClient = new KvClient(server.address, { deadlineMs: 600_000 });
        while (running) {
          const response = await snapClient.snapshot();
          snapshots++;
          snapshotMs += Number(response.duration_ms);
        }
        snapClient.close();
      })()
      : Promise.resolve();
    const cpuBefore = cpuSeconds(server.pid);
    const result = await drive({ ...driverSettings, address: server.address, workload: "mixed" });
    const cpuPercent = Math.round((100 * (cpuSeconds(server.pid) - cpuBefore)) / (durationMs / 1000));
    running = false;
    await snapshotter;
    console.error(`${label}: p99 ${result.p99Ms} ms, ${result.opsPerSecond} ops/s, ${snapshots} snapshots`);
    latency.push({
      load: `mixed get/set, ${keys} keys`,
      "while": label,
      "ops/s": result.opsPerSecond,
      "p50 ms": result.p50Ms,
      "p99 ms": result.p99Ms,
      "max ms": result.maxMs,
      errors: result.errors,
      "server CPU": `${cpuPercent}%`,
      "snapshots written": duringSnapshots ? `${snapshots} (${seconds(snapshotMs / Math.max(1, snapshots))} each)` : "",
    });
    return result;
  };
  await measure("no snapshot", false);
  await measure("snapshots written back to back", true);
  await measure("no snapshot (again)", false);
  client.close();
  await server.stop();

  // 3. Write throughput under each fsync policy, each on a fresh data directory.
  for (const policy of ["always", "everysec", "no"]) {
    const policyDir = await Deno.makeTempDir({ prefix: `kvstore-bench-${policy}-`, dir: "/var/tmp" });
    try {
      const policyServer = await startDenoServer(
        "main.ts",
        serverArgs(policyDir, ["--appendfsync", policy]),
        SERVER_CORE,
      );
      const cpuBefore = cpuSeconds(policyServer.pid);
      const result = await drive({
        ...driverSettings,
        keySpace: 100_000,
        address: policyServer.address,
        workload: "set",
      });
      const cpuPercent = Math.round((100 * (cpuSeconds(policyServer.pid) - cpuBefore)) / (durationMs / 1000));
      console.error(`--appendfsync ${policy}: ${result.opsPerSecond} sets/s, p99 ${result.p99Ms} ms`);
      throughput.push({
        "--appendfsync": policy,
        "sets/s": result.opsPerSecond,
        "p50 ms": result.p50Ms,
        "p99 ms": result.p99Ms,
        "max ms": result.maxMs,
        errors: result.errors,
        "server CPU": `${cpuPercent}%`,
        "log bytes": mib(await fileBytes(`${policyDir}/kvstore.aof`)),
      });
      await policyServer.stop();
    } finally {
      await Deno.remove(policyDir, { recursive: true });
    }
  }
} finally {
  await Deno.remove(dataDir, { recursive: true });
}

const machine = describeMachine();
const markdown = [
  "# Persistence: recovery, latency during snapshots, write throughput per fsync policy",
  "",
  `Date: ${new Date().toISOString()}  `,
  `Machine: ${machine.hostname}, ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ` +
  `${machine.os}, Deno ${machine.deno}  `,
  `Dataset: ${keys} keys of ${valueBytes}-byte values (keys key:0 .. key:${keys - 1})  `,
  `Load: ${connections} connections x ${concurrency} calls in flight, ${durationMs} ms per measurement  `,
  `Pinning: ${canPin() ? `server on core ${SERVER_CORE}, load driver on core ${DRIVER_CORE}` : "none (no taskset)"}`,
  "",
  "## Recovery and file sizes",
  "",
  "Start to serving: from spawning the process to its `Listening on` line; loading is that minus the start of a " +
  "node on an empty directory.",
  "",
  markdownTable(recovery),
  "",
  "## Request latency while a snapshot of the dataset is written",
  "",
  "The Snapshot rpc is called back to back for the whole measurement, so every request competes with a snapshot " +
  "being serialized (in 1 MiB chunks that yield to the event loop) and the log being cut after it.",
  "",
  markdownTable(latency),
  "",
  "## Write throughput per --appendfsync policy",
  "",
  "SET of 100-byte values over 100,000 keys on a fresh node. With `always`, each batch of writes that arrived in " +
  "one event-loop turn shares one write and one fdatasync (group commit).",
  "",
  markdownTable(throughput),
  "",
].join("\n");
const path = await writeResults("persistence", markdown, {
  settings: { keys, valueBytes, durationMs, connections, concurrency },
  recovery,
  latency,
  throughput,
});
console.log(markdown);
console.log(`Recorded in ${path}`);
