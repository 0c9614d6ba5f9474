/**
 * `kvstore bench`: a load test in the spirit of redis-benchmark. N clients, each with
 * its own connection, keep P requests in flight (`--pipeline`) until the test has made
 * its requests; each request is one call carrying B keys (`--batch`: Get/Set for 1,
 * MGet/MSet above). Keys are drawn at random from `--keyspace` keys, values are
 * `--value-size` bytes.
 *
 * Tests: `set`, `get`, and `mixed` (each request a get with probability --read-ratio,
 * else a set). The default runs set first, so get and mixed find the keys it wrote.
 *
 * It prints ops/s (keys per second) and latency percentiles per call as a table, or
 * JSON with --json, and with --histogram FILE.svg draws the latency distribution of
 * every test in one SVG plot. Throughput and latency count only the calls that
 * succeeded; if any call failed, a line per test on stderr says how many and why, and the
 * exit status is 3 (a server error), so a script does not take the figures for good.
 *
 * The load generator is this one process: on a small machine it competes with the
 * server for CPU, so run it from another machine (or pinned to another core) for figures
 * that measure the server alone.
 *
 * @module
 */

import { plural } from "../../errors.ts";
import {
  BATCH_KEYS_MAX,
  BENCH_CLIENTS_MAX,
  BENCH_PIPELINE_MAX,
  BENCH_REQUESTS_MAX,
  VALUE_BYTES_MAX_CEILING,
} from "../../config/limits.ts";
import { UsageError } from "../../config/usage_error.ts";
import { parseByteSize, parseInteger } from "../../config/values.ts";
import {
  type BenchResult,
  callsPerSecond,
  formatTable,
  keysPerSecond,
  renderLatencySvg,
  summarize,
} from "../bench_stats.ts";
import { KvClient } from "../client.ts";
import { type ClientCommand, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK } from "../command.ts";
import { writeFileAtomic } from "../files.ts";

const TESTS = ["set", "get", "mixed"] as const;
type Test = typeof TESTS[number];

interface BenchSettings {
  readonly clients: number;
  readonly requests: number;
  readonly valueBytes: number;
  readonly keyspace: number;
  readonly pipeline: number;
  readonly batch: number;
  readonly readRatio: number;
  readonly tests: readonly Test[];
}

export const bench: ClientCommand = {
  name: "bench",
  args: "",
  summary: "Load-test a node like redis-benchmark: clients, requests, value size, batch; ops/s and latency.",
  details: "Each of --clients connections keeps --pipeline calls in flight; a call reads or writes --batch keys " +
    "(MGet/MSet above 1). Latency is per call. Example:\n" +
    "  kvstore bench --clients 20 --requests 50000 --value-size 100 --tests set,get --histogram lat.svg",
  arity: [0, 0],
  flags: [
    {
      name: "clients",
      short: "c",
      type: "string",
      valueName: "N",
      help: "Concurrent clients, each its own connection (default 50)",
    },
    { name: "requests", short: "n", type: "string", valueName: "N", help: "Calls per test (default 100000)" },
    {
      name: "value-size",
      short: "d",
      type: "string",
      valueName: "BYTES",
      help: "Size of each value written (default 3)",
    },
    {
      name: "keyspace",
      short: "r",
      type: "string",
      valueName: "N",
      help: "Keys drawn at random from N (default 100000)",
    },
    { name: "pipeline", short: "P", type: "string", valueName: "N", help: "Calls in flight per client (default 1)" },
    {
      name: "batch",
      short: "b",
      type: "string",
      valueName: "N",
      help: "Keys per call: MGet/MSet when over 1 (default 1)",
    },
    {
      name: "tests",
      short: "t",
      type: "string",
      valueName: "LIST",
      help: "Tests to run, in order: set,get,mixed (default all)",
    },
    { name: "read-ratio", type: "string", valueName: "R", help: "Share of gets in the mixed test, 0-1 (default 0.5)" },
    { name: "histogram", type: "string", valueName: "FILE.svg", help: "Write a latency histogram plot (SVG)" },
  ],
  async run(context) {
    const settings = parseSettings(context.flags);
    const histogramPath = context.flags.histogram as string | undefined;
    if (histogramPath !== undefined && !histogramPath.toLowerCase().endsWith(".svg")) {
      throw new UsageError(`Invalid --histogram ${JSON.stringify(histogramPath)}: the plot is SVG; name a .svg file`);
    }
    // One call first: a server that is down is one clear error, not N clients' worth.
    await context.client().info();
    const clients = Array.from(
      { length: settings.clients },
      () => new KvClient(context.endpoint, { deadlineMs: context.timeoutMs, ownConnection: true }),
    );
    try {
      await Promise.all(clients.map((client) => client.waitForReady(context.timeoutMs)));
      if (!context.json) {
        context.print(
          `kvstore bench: ${context.endpoint}, ${plural(settings.clients, "client")}, ` +
            `${plural(settings.requests, "call")} per test, ${settings.valueBytes}-byte values, ` +
            `${plural(settings.keyspace, "key")}, pipeline ${settings.pipeline}, batch ${settings.batch}`,
        );
      }
      const results: BenchResult[] = [];
      const lastErrors = new Map<string, string>();
      for (const test of settings.tests) {
        const { result, lastError } = await runTest(test, clients, settings, context.signal);
        results.push(result);
        if (lastError !== null) lastErrors.set(result.test, lastError);
        if (context.signal.aborted) return EXIT_INTERRUPTED;
      }
      if (histogramPath !== undefined) {
        await writeFileAtomic(
          histogramPath,
          renderLatencySvg(
            results,
            `kvstore bench: ${plural(settings.clients, "client")}, batch ${settings.batch}, ${context.endpoint}`,
          ),
        );
      }
      if (context.json) {
        context.print({
          endpoint: context.endpoint,
          settings,
          results: results.map((result) => resultJson(result, lastErrors.get(result.test) ?? null)),
          histogram: histogramPath ?? null,
        });
      } else {
        context.print("");
        context.print(formatTable(results));
        if (histogramPath !== undefined) context.print(`\nLatency histogram written to ${histogramPath}`);
      }
      // A run with failed calls measured something other than what was asked: it says so
      // and exits as a server error does, so a script cannot take its figures for good.
      const failed = results.filter((result) => result.errors > 0);
      for (const result of failed) {
        context.warn(
          `kvstore bench: ${result.errors} of ${plural(result.calls, "call")} of the ${result.test} test failed ` +
            `(left out of its throughput and latency); the last: ${lastErrors.get(result.test)}`,
        );
      }
      return failed.length > 0 ? EXIT_ERROR : EXIT_OK;
    } finally {
      for (const client of clients) client.close();
    }
  },
};

function parseSettings(flags: Readonly<Record<string, string | boolean | undefined>>): BenchSettings {
  const text = (name: string, fallback: string) => (flags[name] as string | undefined) ?? fallback;
  const tests = text("tests", TESTS.join(",")).split(",").map((test) => test.trim().toLowerCase());
  for (const test of tests) {
    if (!(TESTS as readonly string[]).includes(test)) {
      throw new UsageError(
        `Invalid --tests ${JSON.stringify(flags.tests)}: ${JSON.stringify(test)} is not one of ${TESTS.join(", ")}`,
      );
    }
  }
  const readRatioText = text("read-ratio", "0.5");
  const readRatio = Number(readRatioText);
  if (readRatioText.trim() === "" || !(readRatio >= 0 && readRatio <= 1)) {
    throw new UsageError(`Invalid --read-ratio ${JSON.stringify(readRatioText)}: expected a number from 0 to 1`);
  }
  return {
    clients: parseInteger(text("clients", "50"), "--clients", 1, BENCH_CLIENTS_MAX),
    requests: parseInteger(text("requests", "100000"), "--requests", 1, BENCH_REQUESTS_MAX),
    valueBytes: parseByteSize(text("value-size", "3"), "--value-size", 0, VALUE_BYTES_MAX_CEILING),
    keyspace: parseInteger(text("keyspace", "100000"), "--keyspace", 1, Number.MAX_SAFE_INTEGER),
    pipeline: parseInteger(text("pipeline", "1"), "--pipeline", 1, BENCH_PIPELINE_MAX),
    batch: parseInteger(text("batch", "1"), "--batch", 1, BATCH_KEYS_MAX),
    readRatio,
    tests: tests as Test[],
  };
}

/** Runs one test: every client keeps `pipeline` calls going until `requests` calls were
 * made; each successful call's latency is kept, and the last failure's message. */
async function runTest(
  test: Test,
  clients: readonly KvClient[],
  settings: BenchSettings,
  signal: AbortSignal,
): Promise<{ result: BenchResult; lastError: string | null }> {
  const value = "x".repeat(settings.valueBytes);
  const digits = String(settings.keyspace - 1).length;
  const randomKey = () => `key:${String(Math.floor(Math.random() * settings.keyspace)).padStart(digits, "0")}`;
  const keys = () => Array.from({ length: settings.batch }, randomKey);
  const call = (client: KvClient, read: boolean): Promise<unknown> => {
    if (settings.batch === 1) return read ? client.get(randomKey()) : client.set(randomKey(), value);
    return read ? client.mget(keys()) : client.mset(keys().map((key) => ({ key, value })));
  };
  const latencies = new Float64Array(settings.requests);
  let issued = 0;
  let succeeded = 0;
  let errors = 0;
  let lastError: string | null = null;
  const loop = async (client: KvClient) => {
    // An interrupted run stops issuing calls; those in flight finish within their deadline.
    while (issued < settings.requests && !signal.aborted) {
      issued++;
      const read = test === "get" || (test === "mixed" && Math.random() < settings.readRatio);
      const startedMs = performance.now();
      try {
        await call(client, read);
        latencies[succeeded++] = performance.now() - startedMs;
      } catch (error) {
        errors++;
        lastError = error instanceof Error ? error.message : String(error);
      }
    }
  };
  const startedMs = performance.now();
  await Promise.all(clients.flatMap((client) => Array.from({ length: settings.pipeline }, () => loop(client))));
  const seconds = (performance.now() - startedMs) / 1000;
  const sorted = latencies.slice(0, succeeded).sort();
  return {
    result: {
      test: test.toUpperCase(),
      calls: issued,
      keys: issued * settings.batch,
      errors,
      seconds,
      sortedLatenciesMs: sorted,
    },
    lastError,
  };
}

function resultJson(result: BenchResult, lastError: string | null): Record<string, unknown> {
  const summary = summarize(result.sortedLatenciesMs);
  const round = (value: number) => Number.isNaN(value) ? null : Math.round(value * 1000) / 1000;
  return {
    test: result.test,
    calls: result.calls,
    keys: result.keys,
    errors: result.errors,
    seconds: round(result.seconds),
    keysPerSecond: Math.round(keysPerSecond(result)),
    callsPerSecond: Math.round(callsPerSecond(result)),
    lastError,
    latencyMs: {
      min: round(summary.minMs),
      mean: round(summary.meanMs),
      ...Object.fromEntries(Object.entries(summary.percentilesMs).map(([label, value]) => [label, round(value)])),
      max: round(summary.maxMs),
    },
  };
}
