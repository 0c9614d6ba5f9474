// deno-lint-ignore-file no-console -- a benchmark reports on the terminal
/**
 * Durability figures: recovery time and file sizes for a large dataset, request latency
 * while a snapshot of it is written (next to the same load without one), and write
 * throughput under each --appendfsync policy.
 *
 * The server runs pinned to core 0 and the load driver (bench/load_driver.ts) to core 1,
 * as in bench/throughput.ts. A benchmark, never a test: it fails on nothing but errors.
 *
 * Latency and throughput are measured over several rounds in alternating order, so
 * that drift on a shared machine falls on every variant alike; the tables show medians,
 * and the report records the machine's load average, which other work can raise.
 *
 * Usage: deno task bench:persistence [--keys 1000000] [--value-bytes 100]
 *          [--duration-ms 5000] [--connections 8] [--concurrency 8] [--rounds 3]
 */

import { parseArgs } from "node:util";
import { KvClient } from "../src/client/client.ts";
import { drive } from "./lib/driver.ts";
import { type LoadResult, quantile } from "./lib/load.ts";
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
    rounds: { type: "string", default: "3" },
  },
});
const keys = Number(values.keys);
const valueBytes = Number(values["value-bytes"]);
const durationMs = Number(values["duration-ms"]);
const connections = Number(values.connections);
const concurrency = Number(values.concurrency);
const rounds = Number(values.rounds);
const SERVER_CORE = 0;
const DRIVER_CORE = 1;
/** Entries per MSet while loading the dataset. */
const LOAD_BATCH_KEYS = 1000;

function serverArgs(dataDir: string, extra: string[] = []): string[] {
  // No snapshot but those the bench asks for: it measures a start from the log alone.
  return [
    "--address",
    "127.0.0.1:0",
    "--data-dir",
    dataDir,
    "--snapshot-interval-seconds",
    "0",
    "--log-rewrite-min-bytes",
    "0",
    ...extra,
  ];
}

async function fileBytes(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

/** The median, to two decimals. */
function median(numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const value = sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return Math.round(value * 100) / 100;
}

/** The 1-minute load average, from /proc/loadavg ("" elsewhere). */
function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  } catch {
    return "";
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

const loadAverageBefore = loadAverage();

// 1. Recovery and file sizes.
const dataDir = await Deno.makeTempDir({ prefix: "kvstore-bench-persistence-", dir: "/var/tmp" });
const recovery: Record<string, string | number>[] = [];
const latency: Record<string, string | number>[] = [];
const stalls: Record<string, string | number>[] = [];
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

  const snapshotClient = new KvClient(server.address, { deadlineMs: 600_000 });
  const snapshot = await snapshotClient.snapshot();
  snapshotClient.close();
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

  // 2. Latency with and without a snapshot being written, alternating over the rounds
  // so that drift on a shared machine falls on both alike; medians are reported.
  const measure = async (duringSnapshots: boolean) => {
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
    const wallBefore = performance.now();
    const result = await drive({ ...driverSettings, address: server.address, workload: "mixed" });
    const cpuPercent = (100 * (cpuSeconds(server.pid) - cpuBefore)) / ((performance.now() - wallBefore) / 1000);
    running = false;
    await snapshotter;
    console.error(
      `${duringSnapshots ? "with snapshots" : "no snapshot"}: p99 ${result.p99Ms} ms, ${result.opsPerSecond} ops/s, ` +
        `${snapshots} snapshots`,
    );
    return { ...result, cpuPercent, snapshots, snapshotMs };
  };
  const samples: Record<string, Awaited<ReturnType<typeof measure>>[]> = { without: [], with: [] };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [false, true] : [true, false];
    for (const duringSnapshots of order) {
      samples[duringSnapshots ? "with" : "without"].push(await measure(duringSnapshots));
    }
  }
  for (
    const [label, list] of [["no snapshot", samples.without], ["snapshots written back to back", samples.with]] as const
  ) {
    const pick = (field: "opsPerSecond" | "p50Ms" | "p99Ms" | "maxMs" | "cpuPercent") =>
      median(list.map((sample) => sample[field]));
    const snapshots = list.reduce((sum, sample) => sum + sample.snapshots, 0);
    const snapshotMs = list.reduce((sum, sample) => sum + sample.snapshotMs, 0);
    latency.push({
      load: `mixed get/set, ${keys} keys`,
      "while": label,
      "ops/s": pick("opsPerSecond"),
      "p50 ms": pick("p50Ms"),
      "p99 ms": pick("p99Ms"),
      "max ms": pick("maxMs"),
      errors: list.reduce((sum, sample) => sum + sample.errors, 0),
      "server CPU": `${Math.round(pick("cpuPercent"))}%`,
      "snapshots written": snapshots === 0 ? "" : `${snapshots} (${seconds(snapshotMs / snapshots)} each)`,
    });
  }

  // 2b. Stalls: one client, one Get at a time, so nothing queues behind the load and
  // the latency shows how long the server's event loop is held, with and without a
  // snapshot being written (back to back) meanwhile.
  const client = new KvClient(server.address, { deadlineMs: 600_000 });
  const probe = async (duringSnapshots: boolean) => {
    let running = true;
    let snapshots = 0;
    const snapshotter = duringSnapshots
      ? (async () => {
        const snapClient = new KvClient(server.address, { deadlineMs: 600_000 });
        while (running) {
          await snapClient.snapshot();
          snapshots++;
        }
        snapClient.close();
      })()
      : Promise.resolve();
    const latencies: number[] = [];
    const deadline = performance.now() + durationMs;
    while (performance.now() < deadline) {
      const started = performance.now();
      await client.get(`key:${Math.floor(Math.random() * keys)}`);
      latencies.push(performance.now() - started);
    }
    running = false;
    await snapshotter;
    const sorted = Float64Array.from(latencies).sort();
    const round2 = (value: number) => Math.round(value * 100) / 100;
    console.error(`probe ${duringSnapshots ? "with" : "without"} snapshots: max ${round2(sorted.at(-1)!)} ms`);
    return {
      calls: sorted.length,
      p50Ms: round2(quantile(sorted, 0.5)),
      p99Ms: round2(quantile(sorted, 0.99)),
      maxMs: round2(sorted.at(-1)!),
      snapshots,
    };
  };
  const probes: Record<string, Awaited<ReturnType<typeof probe>>[]> = { without: [], with: [] };
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [false, true] : [true, false];
    for (const duringSnapshots of order) {
      probes[duringSnapshots ? "with" : "without"].push(await probe(duringSnapshots));
    }
  }
  for (
    const [label, list] of [["no snapshot", probes.without], ["snapshots written back to back", probes.with]] as const
  ) {
    stalls.push({
      load: "one client, one Get at a time",
      "while": label,
      "calls/s": Math.round(median(list.map((sample) => sample.calls)) / (durationMs / 1000)),
      "p50 ms": median(list.map((sample) => sample.p50Ms)),
      "p99 ms": median(list.map((sample) => sample.p99Ms)),
      "max ms": median(list.map((sample) => sample.maxMs)),
      "snapshots written": list.reduce((sum, sample) => sum + sample.snapshots, 0) || "",
    });
  }
  client.close();
  await server.stop();

  // 3. Write throughput under each fsync policy: one node per policy, each on a fresh
  // data directory, measured in alternating order over the rounds; medians reported.
  const policies = ["always", "everysec", "no"];
  const policyDirs = await Promise.all(
    policies.map((policy) => Deno.makeTempDir({ prefix: `kvstore-bench-${policy}-`, dir: "/var/tmp" })),
  );
  const policyServers: BenchProcess[] = [];
  try {
    for (const [i, policy] of policies.entries()) {
      policyServers.push(
        await startDenoServer("main.ts", serverArgs(policyDirs[i], ["--appendfsync", policy]), SERVER_CORE),
      );
    }
    const policySamples = policies.map(() => [] as (LoadResult & { cpuPercent: number })[]);
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [0, 1, 2] : [2, 1, 0];
      for (const i of order) {
        const cpuBefore = cpuSeconds(policyServers[i].pid);
        const wallBefore = performance.now();
        const result = await drive({
          ...driverSettings,
          keySpace: 100_000,
          address: policyServers[i].address,
          workload: "set",
        });
        const cpuPercent = (100 * (cpuSeconds(policyServers[i].pid) - cpuBefore)) /
          ((performance.now() - wallBefore) / 1000);
        console.error(`--appendfsync ${policies[i]}: ${result.opsPerSecond} sets/s, p99 ${result.p99Ms} ms`);
        policySamples[i].push({ ...result, cpuPercent });
      }
    }
    for (const [i, policy] of policies.entries()) {
      const list = policySamples[i];
      const pick = (field: "opsPerSecond" | "p50Ms" | "p99Ms" | "maxMs" | "cpuPercent") =>
        median(list.map((sample) => sample[field]));
      throughput.push({
        "--appendfsync": policy,
        "sets/s": pick("opsPerSecond"),
        "p50 ms": pick("p50Ms"),
        "p99 ms": pick("p99Ms"),
        "max ms": pick("maxMs"),
        errors: list.reduce((sum, sample) => sum + sample.errors, 0),
        "server CPU": `${Math.round(pick("cpuPercent"))}%`,
      });
    }
  } finally {
    for (const policyServer of policyServers) await policyServer.stop();
    for (const policyDir of policyDirs) await Deno.remove(policyDir, { recursive: true });
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
  `Load: ${connections} connections x ${concurrency} calls in flight, ${durationMs} ms per measurement, ` +
  `median of ${rounds} alternating rounds  `,
  `Machine load average (1 min): ${loadAverageBefore} at the start, ${loadAverage()} at the end  `,
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
  "being serialized (in 64 KiB chunks that yield to the event loop) and the log being cut after it.",
  "",
  "Under the saturating load (64 calls always in flight), latency is mostly queueing behind the server's one core, " +
  "and snapshots written back to back take a large share of that core: throughput and latency follow that share. " +
  "With one call at a time nothing queues, so the second table shows how long a snapshot holds the event loop.",
  "",
  markdownTable(latency),
  "",
  markdownTable(stalls),
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
  settings: { keys, valueBytes, durationMs, connections, concurrency, rounds },
  recovery,
  latency,
  stalls,
  throughput,
});
console.log(markdown);
console.log(`Recorded in ${path}`);
