/**
 * A load generator: many clients, each with several calls in flight, for a bounded
 * time, recording the latency of every call.
 *
 * @module
 */

import { KvClient } from "../../src/client/client.ts";

export type Workload = "set" | "get" | "mixed";

export interface LoadOptions {
  readonly address: string;
  readonly workload: Workload;
  /** Client connections, each its own HTTP/2 connection. */
  readonly connections: number;
  /** Calls in flight per connection. */
  readonly concurrency: number;
  readonly durationMs: number;
  readonly valueBytes: number;
  /** Keys are drawn from key:0 .. key:(keySpace - 1). */
  readonly keySpace: number;
}

export interface LoadResult {
  readonly workload: Workload;
  readonly ops: number;
  readonly errors: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** The q-quantile (0..1) of sorted samples, by nearest rank. */
export function quantile(sorted: Float64Array | number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

/** Writes every key of the key space once, so reads find values. */
export async function preload(address: string, keySpace: number, valueBytes: number): Promise<void> {
  const client = new KvClient(address, { deadlineMs: 60_000 });
  const value = "v".repeat(valueBytes);
  try {
    for (let start = 0; start < keySpace; start += 500) {
      const end = Math.min(keySpace, start + 500);
      const writes = [];
      for (let i = start; i < end; i++) writes.push(client.set(`key:${i}`, value));
      await Promise.all(writes);
    }
  } finally {
    client.close();
  }
}

/** Runs the workload and returns throughput and latency percentiles. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  // Each client opens its own connection: grpc-js otherwise pools every client of one
  // address in a process onto a single HTTP/2 connection, and "8 connections" would be one.
  const clients = Array.from(
    { length: options.connections },
    () => new KvClient(options.address, { deadlineMs: 30_000, ownConnection: true }),
  );
  await Promise.all(clients.map((client) => client.waitForReady(10_000)));
  const value = "v".repeat(options.valueBytes);
  const latencies: number[] = [];
  let errors = 0;
  let counter = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;

  const worker = async (client: KvClient) => {
    while (performance.now() < deadline) {
      const key = `key:${Math.floor(Math.random() * options.keySpace)}`;
      const write = options.workload === "set" || (options.workload === "mixed" && (counter++ & 1) === 0);
      const callStarted = performance.now();
      try {
        if (write) await client.set(key, value);
        else await client.get(key);
        latencies.push(performance.now() - callStarted);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(clients.flatMap((client) => Array.from({ length: options.concurrency }, () => worker(client))));
  const elapsedMs = performance.now() - started;
  for (const client of clients) client.close();

  const sorted = Float64Array.from(latencies).sort();
  return {
    workload: options.workload,
    ops: sorted.length,
    errors,
    opsPerSecond: Math.round(sorted.length / (elapsedMs / 1000)),
    p50Ms: round(quantile(sorted, 0.5)),
    p90Ms: round(quantile(sorted, 0.9)),
    p99Ms: round(quantile(sorted, 0.99)),
    maxMs: round(sorted.at(-1) ?? NaN),
  };
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
