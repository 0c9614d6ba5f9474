import assert from "node:assert/strict";
import { METRIC_SERIES_MAX } from "../config/limits.ts";
import { expositionProblems, parseExposition, sampleValue } from "./exposition.ts";
import { MetricsRegistry } from "./registry.ts";

Deno.test("a counter renders HELP, TYPE and one line per label set", () => {
  const metrics = new MetricsRegistry();
  const calls = metrics.counter({ name: "calls_total", help: "Calls answered.", labelNames: ["rpc", "code"] });
  calls.inc({ rpc: "Get", code: "OK" });
  calls.inc({ code: "OK", rpc: "Get" }, 2);
  calls.inc({ rpc: "Set", code: "INVALID_ARGUMENT" });
  const text = metrics.render();
  assert.ok(
    text.startsWith(
      "# HELP calls_total Calls answered.\n" +
        "# TYPE calls_total counter\n" +
        'calls_total{rpc="Get",code="OK"} 3\n' +
        'calls_total{rpc="Set",code="INVALID_ARGUMENT"} 1\n',
    ),
    text,
  );
  assert.ok(text.endsWith("kvstore_metrics_series_dropped_total 0\n"));
});

Deno.test("a histogram writes cumulative buckets, +Inf, sum and count", () => {
  const metrics = new MetricsRegistry();
  const latency = metrics.histogram({ name: "lat_seconds", help: "Latency.", buckets: [0.1, 1] });
  for (const value of [0.05, 0.1, 0.5, 3]) latency.observe(value);
  const lines = metrics.render().split("\n");
  assert.deepEqual(lines.slice(0, 7), [
    "# HELP lat_seconds Latency.",
    "# TYPE lat_seconds histogram",
    'lat_seconds_bucket{le="0.1"} 2',
    'lat_seconds_bucket{le="1"} 3',
    'lat_seconds_bucket{le="+Inf"} 4',
    "lat_seconds_sum 3.65",
    "lat_seconds_count 4",
  ]);
});

Deno.test("a value on a bucket's bound falls in that bucket", () => {
  const metrics = new MetricsRegistry();
  const sizes = metrics.histogram({ name: "sizes", help: "h", buckets: [1, 2, 4] });
  for (const value of [1, 2, 4, 0, 5]) sizes.observe(value);
  const parsed = parseExposition(metrics.render());
  assert.deepEqual(
    ["1", "2", "4", "+Inf"].map((le) => sampleValue(parsed, "sizes_bucket", { le })),
    [2, 3, 4, 5],
  );
});

Deno.test("collected metrics read their value at render time", () => {
  const metrics = new MetricsRegistry();
  let keys = 5;
  metrics.gauge({ name: "keys", help: "Keys.", collect: () => keys });
  metrics.gauge({
    name: "lag",
    help: "Lag per replica.",
    labelNames: ["replica"],
    collect: () => [{ labels: { replica: "a:1" }, value: 3 }, { labels: { replica: "b:2" }, value: 0 }],
  });
  assert.equal(sampleValue(parseExposition(metrics.render()), "keys"), 5);
  keys = 7;
  const parsed = parseExposition(metrics.render());
  assert.equal(sampleValue(parsed, "keys"), 7);
  assert.equal(sampleValue(parsed, "lag", { replica: "a:1" }), 3);
  assert.equal(sampleValue(parsed, "lag", { replica: "b:2" }), 0);
});

Deno.test("a collect function that throws costs its own samples, not the scrape", () => {
  const metrics = new MetricsRegistry();
  metrics.gauge({
    name: "broken",
    help: "b",
    collect: () => {
      throw new Error("disk gone");
    },
  });
  metrics.gauge({ name: "fine", help: "f", collect: () => 1 });
  const text = metrics.render();
  assert.match(text, /^# broken: collect failed: disk gone$/m);
  assert.equal(sampleValue(parseExposition(text), "fine"), 1);
});

Deno.test("help and label values are escaped, and parse back to the original", () => {
  const metrics = new MetricsRegistry();
  const odd = 'a "quoted" \\ back\nslash';
  metrics.counter({ name: "odd_total", help: "Help with \\ and\nnewline.", labelNames: ["v"] }).inc({ v: odd });
  const text = metrics.render();
  assert.ok(text.includes('odd_total{v="a \\"quoted\\" \\\\ back\\nslash"} 1'), text);
  assert.ok(text.includes("# HELP odd_total Help with \\\\ and\\nnewline."), text);
  const parsed = parseExposition(text);
  assert.equal(parsed.samples[0].labels.v, odd);
  assert.equal(parsed.help.get("odd_total"), "Help with \\ and\nnewline.");
  assert.equal(parsed.types.get("odd_total"), "counter");
});

Deno.test("special values are written as +Inf, -Inf and NaN", () => {
  const metrics = new MetricsRegistry();
  const gauge = metrics.gauge({ name: "g", help: "g", labelNames: ["k"] });
  gauge.set(Infinity, { k: "a" });
  gauge.set(-Infinity, { k: "b" });
  gauge.set(NaN, { k: "c" });
  gauge.set(0.25, { k: "d" });
  const text = metrics.render();
  assert.ok(text.includes('g{k="a"} +Inf\ng{k="b"} -Inf\ng{k="c"} NaN\ng{k="d"} 0.25\n'), text);
  const parsed = parseExposition(text);
  assert.equal(sampleValue(parsed, "g", { k: "a" }), Infinity);
  assert.ok(Number.isNaN(sampleValue(parsed, "g", { k: "c" })));
});

Deno.test("a metric holds a bounded number of series and counts what it drops", () => {
  const metrics = new MetricsRegistry();
  const counter = metrics.counter({ name: "per_key_total", help: "h", labelNames: ["key"] });
  for (let i = 0; i < METRIC_SERIES_MAX + 5; i++) counter.inc({ key: String(i) });
  counter.inc({ key: "0" });
  const parsed = parseExposition(metrics.render());
  assert.equal(parsed.samples.filter((sample) => sample.name === "per_key_total").length, METRIC_SERIES_MAX);
  assert.equal(sampleValue(parsed, "per_key_total", { key: "0" }), 2);
  assert.equal(sampleValue(parsed, "kvstore_metrics_series_dropped_total"), 5);
});

Deno.test("a series handle updates the same series as labels do, and appears on first use", () => {
  const metrics = new MetricsRegistry();
  const calls = metrics.counter({ name: "calls_total", help: "h", labelNames: ["rpc"] });
  const latency = metrics.histogram({ name: "lat_seconds", help: "h", labelNames: ["rpc"], buckets: [1] });
  const getCalls = calls.series({ rpc: "Get" });
  const getLatency = latency.series({ rpc: "Get" });
  assert.doesNotMatch(metrics.render(), /rpc="Get"/, "a handle alone adds no series");
  getCalls.inc();
  getCalls.inc(2);
  calls.inc({ rpc: "Get" });
  getLatency.observe(0.5);
  latency.observe(3, { rpc: "Get" });
  assert.equal(calls.value({ rpc: "Get" }), 4);
  assert.equal(latency.count({ rpc: "Get" }), 2);
  const parsed = parseExposition(metrics.render());
  assert.equal(sampleValue(parsed, "lat_seconds_bucket", { rpc: "Get", le: "1" }), 1);
  assert.throws(() => getCalls.inc(-1), /cannot change by -1/);
  assert.throws(() => calls.series({}), /takes labels \[rpc\]/);
});

Deno.test("series handles past the bound are dropped and counted", () => {
  const metrics = new MetricsRegistry();
  const counter = metrics.counter({ name: "per_key_total", help: "h", labelNames: ["key"] });
  const histogram = metrics.histogram({ name: "per_key_seconds", help: "h", labelNames: ["key"], buckets: [1] });
  for (let i = 0; i < METRIC_SERIES_MAX; i++) {
    counter.inc({ key: String(i) });
    histogram.observe(1, { key: String(i) });
  }
  counter.series({ key: "over" }).inc();
  histogram.series({ key: "over" }).observe(1);
  assert.equal(counter.value({ key: "over" }), 0);
  assert.equal(histogram.count({ key: "over" }), 0);
  assert.equal(metrics.seriesDropped, 2);
});

Deno.test("programmer errors are refused: bad names, wrong labels, counters going down, duplicates", () => {
  const metrics = new MetricsRegistry();
  assert.throws(() => metrics.counter({ name: "bad-name", help: "h" }), /Invalid metric name/);
  assert.throws(() => metrics.counter({ name: "x_total", help: "h", labelNames: ["le"] }), /Invalid label name/);
  assert.throws(() => metrics.histogram({ name: "h", help: "h", buckets: [2, 1] }), /ascending/);
  const counter = metrics.counter({ name: "c_total", help: "h", labelNames: ["rpc"] });
  assert.throws(() => counter.inc({}), /takes labels \[rpc\]/);
  assert.throws(() => counter.inc({ rpc: "Get", extra: "x" }), /takes labels/);
  assert.throws(() => counter.inc({ rpc: "Get" }, -1), /cannot change by -1/);
  assert.throws(() => metrics.gauge({ name: "c_total", help: "again" }), /already registered/);
  const collected = metrics.gauge({ name: "collected", help: "h", collect: () => 1 });
  assert.throws(() => collected.set(2), /is collected/);
  const collectedCount = metrics.counter({ name: "collected_total", help: "h", collect: () => 1 });
  assert.throws(() => collectedCount.series().inc(), /is collected/);
});

Deno.test("the parser refuses malformed lines, naming the line", () => {
  assert.throws(() => parseExposition("ok 1\nnot a sample line at all\n"), /line 2/);
  assert.throws(() => parseExposition('x{a="1"} one'), /bad value/);
  assert.throws(() => parseExposition("# TYPE x bogus"), /unknown type/);
  assert.deepEqual(parseExposition("# comment\n\nx 1 1700000000000\n").samples, [{ name: "x", labels: {}, value: 1 }]);
});

Deno.test("a rendered registry follows the format's rules, and breaking one is caught", () => {
  const metrics = new MetricsRegistry();
  metrics.counter({ name: "calls_total", help: "Calls.", labelNames: ["rpc"] }).inc({ rpc: "Get" });
  const latency = metrics.histogram({
    name: "latency_seconds",
    help: "Latency.",
    labelNames: ["rpc"],
    buckets: [0.1, 1],
  });
  latency.observe(0.05, { rpc: "Get" });
  latency.observe(5, { rpc: "Get" });
  latency.observe(0.5, { rpc: "Set" });
  metrics.gauge({ name: "keys", help: "Keys.", collect: () => 3 });
  const text = metrics.render();
  assert.deepEqual(expositionProblems(text), []);

  const broken = [
    [
      text.replace('latency_seconds_bucket{rpc="Get",le="1"} 1', 'latency_seconds_bucket{rpc="Get",le="1"} 0'),
      /not cumulative/,
    ],
    [text.replace(/^latency_seconds_bucket\{rpc="Set",le="\+Inf"\} 1\n/m, ""), /no le="\+Inf" bucket last/],
    [text.replace('latency_seconds_count{rpc="Get"} 2', 'latency_seconds_count{rpc="Get"} 3'), /_count unequal/],
    [text.replace("# TYPE keys gauge\n", ""), /keys has no HELP and TYPE before it/],
    [text + 'calls_total{rpc="Set"} 1\n', /calls_total appears again after other metrics/],
    [text.replaceAll("calls_total", "calls"), /counter calls lacks _total/],
  ] as const;
  for (const [variant, problem] of broken) {
    assert.ok(
      expositionProblems(variant).some((line) => problem.test(line)),
      `${problem}: ${expositionProblems(variant)}`,
    );
  }
});
