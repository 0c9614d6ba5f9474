// deno-lint-ignore-file no-console -- a soak tool reports on the terminal
/**
 * Counts a process's live heap objects by constructor, through the V8 inspector, to tell
 * a leak from garbage not yet collected: start the process under
 * `deno run --inspect=127.0.0.1:PORT ...`, then
 *
 *   deno run -A bench/soak_heap.ts 127.0.0.1:PORT [--top N] [--grep REGEX]
 *   deno run -A bench/soak_heap.ts 127.0.0.1:PORT --memory
 *
 * prints the heap used after a full collection and the N constructors with the most
 * live objects (or those matching REGEX: Timeout, Http2Session, Subchannel, ...); with
 * --retainers NAME, also the chain of objects that keeps one object named NAME alive. Taking
 * the snapshot pauses the process for about a second per 50 MB of heap. With --memory,
 * prints only Deno.memoryUsage() before and after a full collection.
 *
 * @module
 */

import { parseArgs } from "node:util";

const flags = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    top: { type: "string", default: "40" },
    grep: { type: "string" },
    memory: { type: "boolean" },
    retainers: { type: "string" },
  },
});
const inspector = flags.positionals[0];
if (inspector === undefined) {
  console.error("usage: soak_heap.ts HOST:PORT [--top N] [--grep REGEX]");
  Deno.exit(2);
}

const targets = await (await fetch(`http://${inspector}/json`)).json() as { webSocketDebuggerUrl: string }[];
const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
await new Promise((resolve, reject) => {
  socket.onopen = resolve;
  socket.onerror = reject;
});

let nextId = 1;
const waiting = new Map<number, (result: unknown) => void>();
let chunks: string[] = [];
socket.onmessage = (event) => {
  const message = JSON.parse(event.data as string);
  if (message.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(message.params.chunk);
  else if (message.id !== undefined) waiting.get(message.id)?.(message.result ?? message.error);
};
function send(method: string, params: object = {}): Promise<unknown> {
  const id = nextId++;
  socket.send(JSON.stringify({ id, method, params }));
  return new Promise((resolve) => waiting.set(id, resolve));
}

/** Deno.memoryUsage() in the process, in MiB. */
async function memory(): Promise<string> {
  const answer = await send("Runtime.evaluate", {
    expression: "JSON.stringify(Deno.memoryUsage())",
    returnByValue: true,
  }) as { result: { value: string } };
  const figures = JSON.parse(answer.result.value) as Record<string, number>;
  return Object.entries(figures).map(([name, bytes]) => `${name}=${(bytes / 1024 / 1024).toFixed(1)}`).join(" ");
}

await send("Runtime.enable");
if (flags.values.memory) {
  // Memory before and after a full collection, without a snapshot (which itself grows
  // the process by about the heap's size).
  console.log(`before GC (MiB): ${await memory()}`);
  await send("HeapProfiler.enable");
  await send("HeapProfiler.collectGarbage");
  console.log(`after GC (MiB):  ${await memory()}`);
  socket.close();
  Deno.exit(0);
}
await send("HeapProfiler.enable");
await send("HeapProfiler.collectGarbage");
const usage = await send("Runtime.getHeapUsage") as { usedSize: number; totalSize: number };
chunks = [];
await send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
socket.close();

const snapshot = JSON.parse(chunks.join(""));
const fields: string[] = snapshot.snapshot.meta.node_fields;
const types: string[] = snapshot.snapshot.meta.node_types[0];
const strings: string[] = snapshot.strings;
const nodes: number[] = snapshot.nodes;
const typeAt = fields.indexOf("type");
const nameAt = fields.indexOf("name");
const sizeAt = fields.indexOf("self_size");
const counts = new Map<string, { count: number; bytes: number }>();
for (let i = 0; i < nodes.length; i += fields.length) {
  const type = types[nodes[i + typeAt]];
  if (type !== "object" && type !== "closure" && type !== "array") continue;
  const name = `${type === "closure" ? "closure " : type === "array" ? "array " : ""}${strings[nodes[i + nameAt]]}`;
  const entry = counts.get(name) ?? { count: 0, bytes: 0 };
  entry.count++;
  entry.bytes += nodes[i + sizeAt];
  counts.set(name, entry);
}
console.log(`heap used after GC: ${(usage.usedSize / 1024 / 1024).toFixed(1)} MiB`);
const pattern = flags.values.grep === undefined ? null : new RegExp(flags.values.grep);
const rows = [...counts].filter(([name]) => pattern === null || pattern.test(name))
  .sort((a, b) => b[1].count - a[1].count)
  .slice(0, Number(flags.values.top));
for (const [name, { count, bytes }] of rows) {
  console.log(`${String(count).padStart(9)} ${String(bytes).padStart(11)}  ${name}`);
}

if (flags.values.retainers !== undefined) printRetainers(flags.values.retainers);

/** Prints, for one object named `name`, the path of retainers back toward a root (each
 * step the first retainer not seen yet, weak edges skipped). */
function printRetainers(name: string): void {
  const edgeFields: string[] = snapshot.snapshot.meta.edge_fields;
  const edgeTypes: string[] = snapshot.snapshot.meta.edge_types[0];
  const edges: number[] = snapshot.edges;
  const edgeCountAt = fields.indexOf("edge_count");
  const nodeCount = nodes.length / fields.length;
  const retainers: { from: number; edge: string }[][] = Array.from({ length: nodeCount }, () => []);
  let edgeIndex = 0;
  for (let node = 0; node < nodeCount; node++) {
    const count = nodes[node * fields.length + edgeCountAt];
    for (let e = 0; e < count; e++, edgeIndex += edgeFields.length) {
      const type = edgeTypes[edges[edgeIndex]];
      if (type === "weak") continue;
      const nameOrIndex = edges[edgeIndex + 1];
      const to = edges[edgeIndex + 2] / fields.length;
      const label = type === "element" || type === "hidden" ? `[${nameOrIndex}]` : strings[nameOrIndex];
      retainers[to].push({ from: node, edge: `${type}:${label}` });
    }
  }
  const nodeName = (node: number) =>
    `${types[nodes[node * fields.length + typeAt]]} ${strings[nodes[node * fields.length + nameAt]]}`.slice(0, 100);
  let start = -1;
  for (let node = 0; node < nodeCount && start < 0; node++) {
    const isObject = types[nodes[node * fields.length + typeAt]] === "object";
    if (isObject && strings[nodes[node * fields.length + nameAt]] === name) start = node;
  }
  if (start < 0) return void console.log(`no object named ${name}`);
  const seen = new Set<number>([start]);
  let current = start;
  console.log(`retainers of ${nodeName(start)}:`);
  for (const retainer of retainers[start]) console.log(`  direct: ${retainer.edge} of ${nodeName(retainer.from)}`);
  for (let depth = 0; depth < 30; depth++) {
    const next = retainers[current].find((retainer) => !seen.has(retainer.from));
    if (next === undefined) break;
    console.log(`  <- ${next.edge} of ${nodeName(next.from)} (${retainers[current].length} retainers)`);
    seen.add(next.from);
    current = next.from;
  }
}
