import assert from "node:assert/strict";
import {
  type BenchResult,
  callsPerSecond,
  formatTable,
  keysPerSecond,
  logBins,
  percentile,
  renderLatencySvg,
  summarize,
} from "./bench_stats.ts";

const sorted = (values: number[]) => Float64Array.from(values).sort();

function result(test: string, latencies: number[], options: Partial<BenchResult> = {}): BenchResult {
  return {
    test,
    calls: latencies.length,
    keys: latencies.length,
    errors: 0,
    seconds: 1,
    sortedLatenciesMs: sorted(latencies),
    ...options,
  };
}

Deno.test("percentiles use the nearest rank", () => {
  const values = sorted(Array.from({ length: 100 }, (_, i) => i + 1));
  assert.equal(percentile(values, 0.5), 50);
  assert.equal(percentile(values, 0.99), 99);
  assert.equal(percentile(values, 0.999), 100);
  assert.equal(percentile(values, 1), 100);
  assert.equal(percentile(sorted([7]), 0.5), 7);
  assert.ok(Number.isNaN(percentile(sorted([]), 0.5)));
  assert.deepEqual(summarize(sorted([1, 2, 3, 10])), {
    minMs: 1,
    meanMs: 4,
    maxMs: 10,
    percentilesMs: { p50: 2, p90: 10, p99: 10, "p99.9": 10 },
  });
});

Deno.test("ops/s and calls/s count the calls that succeeded", () => {
  const withErrors = result("SET", [1, 1], { calls: 100, keys: 1000, errors: 10, seconds: 2 });
  assert.equal(keysPerSecond(withErrors), 450);
  assert.equal(callsPerSecond(withErrors), 45);
  assert.equal(callsPerSecond(result("SET", [], { calls: 50, keys: 50, errors: 50, seconds: 1 })), 0);
  assert.equal(keysPerSecond(result("SET", [], { calls: 0, keys: 0, seconds: 0 })), 0);
});

Deno.test("the table has a header and one aligned row per test", () => {
  const table = formatTable([result("SET", [0.5, 1, 2, 4]), result("GET", [0.25, 0.5], { errors: 1, seconds: 0.5 })]);
  const lines = table.split("\n");
  assert.equal(lines.length, 3);
  assert.match(
    lines[0],
    /^test\s+calls\s+keys\/s\s+calls\/s\s+p50 ms\s+p90 ms\s+p99 ms\s+p99\.9 ms\s+max ms\s+errors$/,
  );
  assert.match(lines[1], /^SET\s+4\s+4\s+4\s+1\.000\s+4\.000\s+4\.000\s+4\.000\s+4\.000\s+0$/);
  // One of the two calls failed: it counts in calls and errors, not in keys/s or calls/s.
  assert.match(lines[2], /^GET\s+2\s+2\s+2\s+0\.250\s+0\.500\s.*\s1$/);
  assert.equal(new Set(lines.map((line) => line.length)).size, 1, "the columns are right-aligned to one edge");
});

Deno.test("histogram bins are log-spaced, shared by every series, and hold every value", () => {
  const { edges, counts } = logBins([sorted([1, 1.5, 9]), sorted([5, 90])], 1);
  assert.deepEqual(edges.map((edge) => Number(edge.toPrecision(3))), [1, 10, 100]);
  assert.deepEqual(counts, [[3, 0], [1, 1]]);
  assert.deepEqual(logBins([sorted([])]), { edges: [], counts: [[]] });
});

Deno.test("the SVG plot is a well-formed document with one outline and legend per test", () => {
  const svg = renderLatencySvg([result("SET", [1, 2, 2, 3, 40]), result("GET <&>", [0.5, 0.7])], "bench & co");
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.equal(svg.match(/<path /g)?.length, 2);
  assert.match(svg, /SET: p50 2\.000 ms, p99 40\.0 ms/);
  assert.match(svg, /GET &lt;&amp;&gt;/);
  assert.match(svg, /bench &amp; co/);
  assert.doesNotMatch(svg, /NaN|undefined|Infinity/);
  const opened = (svg.match(/<(?!\/)[a-z]+[^>]*[^/]>/g) ?? []).filter((tag) => !tag.startsWith("<svg"));
  const closedTags = svg.match(/<\/(?!svg)[a-z]+>/g) ?? [];
  assert.equal(opened.length, closedTags.length, "every element that opens closes");
  assert.doesNotMatch(renderLatencySvg([result("EMPTY", [])], "t"), /NaN|undefined/);
});
