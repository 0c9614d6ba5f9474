/**
 * Metrics: a registry of counters, gauges and histograms that every subsystem registers
 * into (registry.ts, with the naming guide for the metrics still to come), the
 * Prometheus text format and its reader (exposition.ts), and the HTTP endpoint that
 * serves it (http.ts).
 *
 * @module
 */

export {
  type Collected,
  Counter,
  type CounterSeries,
  DURATION_BUCKETS_SECONDS,
  formatValue,
  Gauge,
  Histogram,
  type HistogramSeriesHandle,
  type Labels,
  MetricsRegistry,
  type Sample,
} from "./registry.ts";
export { type Exposition, expositionProblems, type ParsedSample, parseExposition, sampleValue } from "./exposition.ts";
export { METRICS_CONTENT_TYPE, type MetricsServer, serveMetrics } from "./http.ts";
