/**
 * A small metrics registry: counters, gauges and histograms with fixed buckets, rendered
 * in the Prometheus text exposition format (version 0.0.4).
 *
 * Pure: no I/O, no timers, no clock. The node owns one registry and hands it to each
 * subsystem, which registers its metrics once, at construction, and then updates them
 * on its own path (`counter.inc(...)`, `histogram.observe(...)`), or declares a
 * `collect` function that reads its state when the registry is rendered (a scrape), so
 * that mirroring state such as the key count costs nothing between scrapes.
 *
 * ```ts
 * const metrics = new MetricsRegistry();
 * const calls = metrics.counter({ name: "kvstore_rpc_requests_total", help: "Calls.", labelNames: ["rpc", "code"] });
 * calls.inc({ rpc: "Get", code: "OK" });
 * metrics.gauge({ name: "kvstore_keys", help: "Live keys.", collect: () => store.size });
 * metrics.render(); // "# HELP kvstore_rpc_requests_total Calls.\n# TYPE ..."
 * ```
 *
 * ## How other subsystems add theirs
 *
 * Names start `kvstore_`, use the project's vocabulary, and carry their unit as a
 * suffix (`_seconds`, `_bytes`, `_total` for counters), as Prometheus recommends.
 * Durations are observed in seconds. Persistence's and replication's metrics are in
 * src/server/subsystem_metrics.ts: gauges that read state when scraped, and histograms
 * fed by hooks on the log (each fsync) and the persistence (each snapshot). A
 * router's own (`kvstore_router_*`) are in src/cluster/router_metrics.ts.
 *
 * ## Format
 *
 * For each metric, in registration order: a `# HELP` line, a `# TYPE` line, then one
 * line per series, `name{label="value",...} value`. A histogram series is written as
 * cumulative `name_bucket{...,le="BOUND"}` lines ending with `le="+Inf"`, then
 * `name_sum` and `name_count`:
 *
 * ```
 * # HELP kvstore_rpc_duration_seconds Time to answer a call.
 * # TYPE kvstore_rpc_duration_seconds histogram
 * kvstore_rpc_duration_seconds_bucket{rpc="Get",le="0.0001"} 3
 * kvstore_rpc_duration_seconds_bucket{rpc="Get",le="+Inf"} 4
 * kvstore_rpc_duration_seconds_sum{rpc="Get"} 0.00042
 * kvstore_rpc_duration_seconds_count{rpc="Get"} 4
 * ```
 *
 * Help text escapes `\` and newline; label values escape `\`, `"` and newline. Values
 * are decimal numbers, `+Inf`, `-Inf` or `NaN`. {@linkcode parseExposition} in
 * exposition.ts reads this back (tests scrape the endpoint with it).
 *
 * Every metric holds at most {@linkcode METRIC_SERIES_MAX} label combinations: a label
 * fed from outside (a replica's address) cannot grow the registry without bound. Series
 * past the bound are dropped and counted in `kvstore_metrics_series_dropped_total`.
 *
 * @module
 */

import { METRIC_SERIES_MAX } from "../config/limits.ts";

/** Label values by label name. */
export type Labels = Readonly<Record<string, string>>;

/** One sample a `collect` function reports. */
export interface Sample {
  readonly labels?: Labels;
  readonly value: number;
}

/** What a collect function returns: one unlabelled value, or samples. */
export type Collected = number | readonly Sample[];

export interface MetricOptions {
  /** `[a-zA-Z_:][a-zA-Z0-9_:]*`; counters end in `_total`. */
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
}

export interface CollectedMetricOptions extends MetricOptions {
  /** Reads the value(s) at render time instead of keeping them in the registry. */
  readonly collect?: () => Collected;
}

export interface HistogramOptions extends MetricOptions {
  /** Upper bounds of the buckets, ascending; `+Inf` is implied. */
  readonly buckets: readonly number[];
}

/** Latency buckets in seconds, from 50 us to 10 s: a cached read answers in well under
 * a millisecond, an fsync or a snapshot can take seconds. */
export const DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const NO_LABELS: Labels = Object.freeze({});
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type MetricType = "counter" | "gauge" | "histogram";

/** What every metric shares: its name, help, label names and series bound. */
abstract class Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: MetricType;
  protected readonly registry: MetricsRegistry;

  constructor(registry: MetricsRegistry, options: MetricOptions) {
    if (!METRIC_NAME.test(options.name)) {
      throw new Error(`metrics: Invalid metric name ${JSON.stringify(options.name)}`);
    }
    for (const label of options.labelNames ?? []) {
      if (!LABEL_NAME.test(label) || label.startsWith("__") || label === "le") {
        throw new Error(`metrics: Invalid label name ${JSON.stringify(label)} on ${options.name}`);
      }
    }
    this.registry = registry;
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames ?? [];
  }

  /** The series key of `labels`: their values in label-name order. Throws when a label
   * is missing or unexpected (a programmer error). */
  protected keyOf(labels: Labels): string {
    const names = Object.keys(labels);
    if (names.length !== this.labelNames.length || this.labelNames.some((name) => labels[name] === undefined)) {
      throw new Error(
        `metrics: ${this.name} takes labels [${this.labelNames.join(", ")}], got [${names.join(", ")}]`,
      );
    }
    return this.labelNames.map((name) => labels[name]).join("\u0000");
  }

  /** The lines of this metric's series, without HELP and TYPE. */
  abstract renderSeries(): string[];
}

/** A value kept per label set: counters and gauges. */
abstract class ScalarMetric extends Metric {
  #series = new Map<string, { labels: Labels; value: number }>();
  #collect: (() => Collected) | undefined;

  constructor(registry: MetricsRegistry, options: CollectedMetricOptions) {
    super(registry, options);
    this.#collect = options.collect;
  }

  /** The current value of a series (0 when never touched); for tests and Info. */
  value(labels: Labels = NO_LABELS): number {
    return this.#series.get(this.keyOf(labels))?.value ?? 0;
  }

  protected update(labels: Labels, change: (value: number) => number): void {
    const series = this.seriesOf(this.keyOf(labels), labels);
    if (series !== undefined) series.value = change(series.value);
  }

  /** The stored series of `key`, made on first use; undefined (and counted as dropped)
   * when the metric already holds METRIC_SERIES_MAX series. */
  protected seriesOf(key: string, labels: Labels): { value: number } | undefined {
    if (this.#collect !== undefined) throw new Error(`metrics: ${this.name} is collected; it cannot be updated`);
    let series = this.#series.get(key);
    if (series === undefined) {
      if (this.#series.size >= METRIC_SERIES_MAX) {
        this.registry.seriesDropped++;
        return undefined;
      }
      series = { labels: { ...labels }, value: 0 };
      this.#series.set(key, series);
    }
    return series;
  }

  renderSeries(): string[] {
    const samples: readonly Sample[] = this.#collect === undefined ? [...this.#series.values()] : this.#collected();
    return samples.map((sample) =>
      `${this.name}${formatLabels(this.labelNames, sample.labels ?? NO_LABELS)} ${formatValue(sample.value)}`
    );
  }

  #collected(): readonly Sample[] {
    const collected = this.#collect!();
    const samples = typeof collected === "number" ? [{ value: collected }] : collected.slice(0, METRIC_SERIES_MAX);
    for (const sample of samples) this.keyOf(sample.labels ?? NO_LABELS);
    return samples;
  }
}

/** A count that only goes up (calls answered, keys expired). */
export class Counter extends ScalarMetric {
  readonly type = "counter";

  /** Adds one (or `by`, which must not be negative) to the series of `labels`. */
  inc(labels: Labels = NO_LABELS, by = 1): void {
    this.#checkIncrement(by);
    this.update(labels, (value) => value + by);
  }

  /** The series of `labels` as a handle, for a hot path: the labels are checked and
   * looked up once, not on every increment. The series appears on its first increment. */
  series(labels: Labels = NO_LABELS): CounterSeries {
    const key = this.keyOf(labels);
    let series: { value: number } | undefined;
    return {
      inc: (by = 1) => {
        this.#checkIncrement(by);
        series ??= this.seriesOf(key, labels);
        if (series !== undefined) series.value += by;
      },
    };
  }

  #checkIncrement(by: number): void {
    if (!(by >= 0)) throw new Error(`metrics: ${this.name} is a counter; it cannot change by ${by}`);
  }
}

/** One series of a counter (see {@linkcode Counter.series}). */
export interface CounterSeries {
  inc(by?: number): void;
}

/** A value that goes up and down (keys, connections, bytes). */
export class Gauge extends ScalarMetric {
  readonly type = "gauge";

  set(value: number, labels: Labels = NO_LABELS): void {
    this.update(labels, () => value);
  }

  add(by: number, labels: Labels = NO_LABELS): void {
    this.update(labels, (value) => value + by);
  }
}

interface HistogramSeries {
  readonly labels: Labels;
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: number[];
  sum: number;
  count: number;
}

/** One series of a histogram (see {@linkcode Histogram.series}). */
export interface HistogramSeriesHandle {
  observe(value: number): void;
}

/** A distribution over fixed buckets (latencies, sizes). */
export class Histogram extends Metric {
  readonly type = "histogram";
  readonly buckets: readonly number[];
  #series = new Map<string, HistogramSeries>();

  constructor(registry: MetricsRegistry, options: HistogramOptions) {
    super(registry, options);
    const buckets = options.buckets;
    if (
      buckets.length === 0 || buckets.some((bound, i) => !Number.isFinite(bound) || (i > 0 && bound <= buckets[i - 1]))
    ) {
      throw new Error(`metrics: ${options.name} needs finite buckets in ascending order`);
    }
    this.buckets = [...buckets];
  }

  observe(value: number, labels: Labels = NO_LABELS): void {
    const series = this.#seriesOf(this.keyOf(labels), labels);
    if (series !== undefined) this.#record(series, value);
  }

  /** The series of `labels` as a handle, for a hot path: the labels are checked and
   * looked up once, not on every observation. The series appears on its first one. */
  series(labels: Labels = NO_LABELS): HistogramSeriesHandle {
    const key = this.keyOf(labels);
    let series: HistogramSeries | undefined;
    return {
      observe: (value) => {
        series ??= this.#seriesOf(key, labels);
        if (series !== undefined) this.#record(series, value);
      },
    };
  }

  #record(series: HistogramSeries, value: number): void {
    series.counts[bucketIndex(this.buckets, value)]++;
    series.sum += value;
    series.count++;
  }

  /** The stored series of `key`, made on first use; undefined (and counted as dropped)
   * when the metric already holds METRIC_SERIES_MAX series. */
  #seriesOf(key: string, labels: Labels): HistogramSeries | undefined {
    let series = this.#series.get(key);
    if (series === undefined) {
      if (this.#series.size >= METRIC_SERIES_MAX) {
        this.registry.seriesDropped++;
        return undefined;
      }
      series = { labels: { ...labels }, counts: new Array(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
      this.#series.set(key, series);
    }
    return series;
  }

  /** Observations so far in the series of `labels`; for tests. */
  count(labels: Labels = NO_LABELS): number {
    return this.#series.get(this.keyOf(labels))?.count ?? 0;
  }

  renderSeries(): string[] {
    const lines: string[] = [];
    for (const series of this.#series.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += series.counts[i];
        const le = i < this.buckets.length ? formatValue(this.buckets[i]) : "+Inf";
        lines.push(`${this.name}_bucket${formatLabels(this.labelNames, series.labels, le)} ${cumulative}`);
      }
      lines.push(`${this.name}_sum${formatLabels(this.labelNames, series.labels)} ${formatValue(series.sum)}`);
      lines.push(`${this.name}_count${formatLabels(this.labelNames, series.labels)} ${series.count}`);
    }
    return lines;
  }
}

/** The index of the first bucket whose upper bound holds `value` (the +Inf slot past
 * the end). Binary search: histograms sit on the hot path of every call. */
function bucketIndex(buckets: readonly number[], value: number): number {
  let low = 0;
  let high = buckets.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (value <= buckets[mid]) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** Every metric of a node, in registration order. */
export class MetricsRegistry {
  /** Series refused because a metric already held METRIC_SERIES_MAX of them. */
  seriesDropped = 0;
  #metrics = new Map<string, Metric>();

  counter(options: CollectedMetricOptions): Counter {
    return this.#add(new Counter(this, options));
  }

  gauge(options: CollectedMetricOptions): Gauge {
    return this.#add(new Gauge(this, options));
  }

  histogram(options: HistogramOptions): Histogram {
    return this.#add(new Histogram(this, options));
  }

  /** The names of the registered metrics, in order. */
  names(): string[] {
    return [...this.#metrics.keys()];
  }

  /** Every metric in the text exposition format, ending with a newline. A collect
   * function that throws costs its metric's samples, not the scrape: the failure is
   * reported as a comment line. */
  render(): string {
    const lines: string[] = [];
    for (const metric of this.#metrics.values()) {
      let series: string[];
      try {
        series = metric.renderSeries();
      } catch (error) {
        lines.push(
          `# ${metric.name}: collect failed: ${escapeHelp(error instanceof Error ? error.message : String(error))}`,
        );
        continue;
      }
      lines.push(`# HELP ${metric.name} ${escapeHelp(metric.help)}`, `# TYPE ${metric.name} ${metric.type}`, ...series);
    }
    lines.push(
      "# HELP kvstore_metrics_series_dropped_total Label combinations refused because a metric held too many.",
      "# TYPE kvstore_metrics_series_dropped_total counter",
      `kvstore_metrics_series_dropped_total ${this.seriesDropped}`,
    );
    return lines.join("\n") + "\n";
  }

  #add<T extends Metric>(metric: T): T {
    if (this.#metrics.has(metric.name) || metric.name === "kvstore_metrics_series_dropped_total") {
      throw new Error(`metrics: ${metric.name} is already registered`);
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}

/** `{a="1",b="2"}` in label-name order, or "" when there are no labels. */
function formatLabels(labelNames: readonly string[], labels: Labels, le?: string): string {
  const parts = labelNames.map((name) => `${name}="${escapeLabelValue(labels[name])}"`);
  if (le !== undefined) parts.push(`le="${le}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** A sample value as the format writes it. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function escapeLabelValue(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}
