// deno-lint-ignore-file no-console -- a benchmark reports on the terminal
/**
 * Throughput and latency of kvstore's unary rpcs, next to the transport's ceiling.
 *
 * Two servers run side by side, each pinned to core 0: a bare grpc-js server that
 * answers from a Map (bench/bare_server.ts) and a kvstore master. A load driver pinned
 * to core 1 runs each workload (set, get, mixed) against one server at a time,
 * alternating between them over several rounds so that drift on a shared machine
 * falls on both alike; the table reports each figure's median over the rounds.
 *
 * Besides ops/s, it reads each server's CPU time from /proc: when the server's core is
 * not saturated (the driver is one Deno process too, and may be the limit), calls per
 * server CPU-second is the fairer measure of what the server can do on one core.
 *
 * How kvstore compares with the bare server is taken round by round: each round runs
 * the two back to back, and the ratio of their figures in that round is one sample; the
 * table gives the median of those ratios and the middle half of them (the spread). On a
 * shared 2-core machine one server's CPU per call moves by 20% or more from one round to
 * the next (other work on the cores, the driver's pace), so a ratio of medians taken
 * apart can land anywhere in that band, while rounds run back to back share most of the
 * drift. A benchmark, never a test: it fails on nothing but errors.
 *
 * Usage: deno task bench [--duration-ms 3000] [--rounds 9] [--connections 8]
 *          [--concurrency 8] [--value-bytes 100] [--key-space 10000]
 */

import { drive } from "./lib/driver.ts";
import type { LoadResult, Workload } from "./lib/load.ts";
import { type BenchProcess, canPin, cpuSeconds, startDenoServer } from "./lib/processes.ts";
import { describeMachine, markdownTable, writeResults } from "./lib/report.ts";
import { parseLoadSettings } from "./lib/settings.ts";

// Nine alternating rounds of 3 s: on a shared 2-core machine one round's per-CPU-second
// ratio moves by 10 points or more (GC, JIT, the driver's pace, other work); the median of
// nine paired ratios is steady to a few points, in about three minutes.
const { settings } = parseLoadSettings(Deno.args, {
  durationMs: 3000,
  rounds: 9,
  connections: 8,
  concurrency: 8,
  valueBytes: 100,
  keySpace: 10_000,
});
const { rounds } = settings;
const workloads: Workload[] = ["set", "get", "mixed"];
const SERVER_CORE = 0;
const DRIVER_CORE = 1;

/** A workload's figures plus the server's CPU use while it ran. */
interface Measured extends LoadResult {
  /** Share of one core the server used, in percent. */
  readonly serverCpuPercent: number;
  /** Calls answered per second of the server's own CPU time. */
  readonly opsPerServerCpuSecond: number;
}

async function measureOnce(server: BenchProcess, workload: Workload): Promise<Measured> {
  const cpuBefore = cpuSeconds(server.pid);
  const wallBefore = performance.now();
  const load = await drive({ ...settings, address: server.address, workload, core: DRIVER_CORE });
  const cpuUsed = cpuSeconds(server.pid) - cpuBefore;
  const wallSeconds = (performance.now() - wallBefore) / 1000;
  return {
    ...load,
    serverCpuPercent: Math.round((100 * cpuUsed) / wallSeconds),
    opsPerServerCpuSecond: Math.round(load.ops / cpuUsed),
  };
}

/** The q-quantile (0..1) of `numbers`, interpolating between neighbours; the median at 0.5. */
function quantile(numbers: number[], q: number): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

function median(numbers: number[]): number {
  return quantile(numbers, 0.5);
}

/** How kvstore's figure compares with the bare server's over the rounds, in percent: the
 * median of the per-round ratios and their middle half (first to third quartile). */
interface PairedRatio {
  readonly median: number;
  readonly low: number;
  readonly high: number;
  readonly rounds: number[];
}

function pairedRatio(ours: Measured[], bare: Measured[], field: "opsPerSecond" | "opsPerServerCpuSecond"): PairedRatio {
  const ratios = ours.map((sample, round) => (100 * sample[field]) / bare[round][field]);
  return { median: quantile(ratios, 0.5), low: quantile(ratios, 0.25), high: quantile(ratios, 0.75), rounds: ratios };
}

/** The median of each figure over the rounds. */
function medianOf(samples: Measured[]): Measured {
  const pick = (field: keyof Measured) => median(samples.map((sample) => sample[field] as number));
  return {
    workload: samples[0].workload,
    ops: pick("ops"),
    errors: samples.reduce((sum, sample) => sum + sample.errors, 0),
    opsPerSecond: pick("opsPerSecond"),
    p50Ms: pick("p50Ms"),
    p90Ms: pick("p90Ms"),
    p99Ms: pick("p99Ms"),
    maxMs: pick("maxMs"),
    serverCpuPercent: pick("serverCpuPercent"),
    opsPerServerCpuSecond: pick("opsPerServerCpuSecond"),
  };
}

/** The 1-minute load average: on a shared machine, other work moves every figure, and
 * the report says how busy the machine was. */
function loadAverage(): string {
  return Deno.loadavg()[0].toFixed(2);
}

const loadAverageAtStart = loadAverage();
const dataDir = await Deno.makeTempDir({ prefix: "kvstore-bench-" });
try {
  await using bare = await startDenoServer("bench/bare_server.ts", ["--address", "127.0.0.1:0"], SERVER_CORE);
  await using kvstore = await startDenoServer(
    "main.ts",
    ["--address", "127.0.0.1:0", "--data-dir", dataDir],
    SERVER_CORE,
  );
  const servers = [{ label: "bare grpc-js (Map)", process: bare }, { label: "kvstore", process: kvstore }];
  for (const { process } of servers) {
    await drive({
      ...settings,
      address: process.address,
      workload: "set",
      core: DRIVER_CORE,
      preload: true,
      durationMs: 500,
    });
  }

  const samples = new Map<string, Measured[]>();
  for (let round = 0; round < rounds; round++) {
    for (const workload of workloads) {
      // Alternate which server goes first, so neither always follows the other.
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const { label, process } of order) {
        const result = await measureOnce(process, workload);
        console.error(
          `round ${round + 1} ${label} ${workload}: ${result.opsPerSecond} ops/s, p99 ${result.p99Ms} ms, ` +
            `server CPU ${result.serverCpuPercent}%, ${result.opsPerServerCpuSecond} ops per CPU-s`,
        );
        const key = `${label}/${workload}`;
        samples.set(key, [...(samples.get(key) ?? []), result]);
      }
    }
  }

  const ratios: Record<string, { opsPerSecond: PairedRatio; perServerCpuSecond: PairedRatio }> = {};
  const rows = workloads.flatMap((workload) => {
    const bareSamples = samples.get(`${servers[0].label}/${workload}`)!;
    return servers.map(({ label }, i) => {
      const ourSamples = samples.get(`${label}/${workload}`)!;
      const result = medianOf(ourSamples);
      const opsRatio = pairedRatio(ourSamples, bareSamples, "opsPerSecond");
      const cpuRatio = pairedRatio(ourSamples, bareSamples, "opsPerServerCpuSecond");
      if (i > 0) ratios[workload] = { opsPerSecond: opsRatio, perServerCpuSecond: cpuRatio };
      const percent = (value: number) => `${Math.round(value)}%`;
      return {
        workload,
        server: label,
        "ops/s": result.opsPerSecond,
        "p50 ms": result.p50Ms,
        "p99 ms": result.p99Ms,
        errors: result.errors,
        "server CPU": `${result.serverCpuPercent}%`,
        "ops per server CPU-s": result.opsPerServerCpuSecond,
        "vs bare, ops/s": i === 0 ? "100%" : percent(opsRatio.median),
        "vs bare, per CPU-s": i === 0 ? "100%" : percent(cpuRatio.median),
        "per CPU-s, middle half of rounds": i === 0 ? "-" : `${percent(cpuRatio.low)}-${percent(cpuRatio.high)}`,
      };
    });
  });
  const machine = describeMachine();
  const markdown = [
    `# Throughput: kvstore vs a bare grpc-js server`,
    "",
    `Date: ${new Date().toISOString()}  `,
    `Machine: ${machine.hostname}, ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, ` +
    `${machine.os}, Deno ${machine.deno}  `,
    `Load: ${settings.connections} connections x ${settings.concurrency} calls in flight, ` +
    `${settings.durationMs} ms per workload and server, median of ${rounds} alternating rounds ` +
    `(the "vs bare" columns: median of the per-round ratios), ` +
    `${settings.valueBytes}-byte values, ${settings.keySpace} keys  `,
    `Pinning: ${
      canPin() ? `both servers on core ${SERVER_CORE}, load driver on core ${DRIVER_CORE}` : "none (no taskset)"
    }  `,
    `Machine load average (1 min): ${loadAverageAtStart} at the start, ${loadAverage()} at the end ` +
    `(the benchmark itself adds up to ${machine.cpus > 1 ? "2" : "1"}; more means other work shared the cores)`,
    "",
    markdownTable(rows),
    "",
    "Server CPU below 100% means the load driver, not the server, was the limit; " +
    "calls per server CPU-second is then the better measure of the server's capacity on one core. " +
    'Each round runs both servers back to back; a "vs bare" figure is the median over the rounds of kvstore\'s ' +
    "figure divided by the bare server's in the same round, and the middle half of rounds is the range from the " +
    "first to the third quartile of those ratios, the spread a single run would show.",
    "",
  ].join("\n");
  const path = await writeResults("throughput", markdown, {
    settings,
    rounds,
    rows,
    ratios,
    loadAverage: { start: Number(loadAverageAtStart), end: Number(loadAverage()) },
  });
  console.log(markdown);
  console.log(`Recorded in ${path}`);
} finally {
  await Deno.remove(dataDir, { recursive: true });
}
