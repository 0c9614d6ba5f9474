/**
 * Runs one load against a server and prints the result as JSON on stdout. The
 * benchmarks spawn it pinned to its own core, apart from the server they measure.
 *
 * Usage: deno run -A bench/load_driver.ts --address HOST:PORT --workload set|get|mixed
 *          [--connections 8] [--concurrency 8] [--duration-ms 5000] [--value-bytes 100]
 *          [--key-space 10000] [--preload]
 */

import { parseArgs } from "node:util";
import { preload, runLoad, type Workload } from "./lib/load.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    address: { type: "string" },
    workload: { type: "string", default: "mixed" },
    connections: { type: "string", default: "8" },
    concurrency: { type: "string", default: "8" },
    "duration-ms": { type: "string", default: "5000" },
    "value-bytes": { type: "string", default: "100" },
    "key-space": { type: "string", default: "10000" },
    preload: { type: "boolean", default: false },
  },
});
if (values.address === undefined) throw new Error("load_driver: --address is required");
const keySpace = Number(values["key-space"]);
const valueBytes = Number(values["value-bytes"]);
if (values.preload) await preload(values.address, keySpace, valueBytes);
const result = await runLoad({
  address: values.address,
  workload: values.workload as Workload,
  connections: Number(values.connections),
  concurrency: Number(values.concurrency),
  durationMs: Number(values["duration-ms"]),
  valueBytes,
  keySpace,
});
await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(result) + "\n"));
Deno.exit(0);
