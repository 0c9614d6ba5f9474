/**
 * The arithmetic of `kvstore bench`: latency percentiles, the results table, and the
 * latency histogram drawn as SVG. Pure.
 *
 * Percentiles are exact: every latency is kept (a Float64Array the size of the run, 8
 * bytes a request) and sorted once, rather than estimated from buckets.
 *
 * @module
 */

/** The percentiles reported, as fractions. */
export const PERCENTILES: readonly number[] = [0.5, 0.9, 0.99, 0.999];

/** What one test measured. */
export interface BenchResult {
  readonly test: string;
  /** Calls made (a call carries `batch` keys). */
  readonly calls: number;
  /** Keys read or written (calls times batch). */
  readonly keys: number;
  /** Calls that failed; they count in `calls` but not in throughput or latency. */
  readonly errors: number;
  readonly seconds: number;
  /** Latency of each call that succeeded, in ms, ascending. */
  readonly sortedLatenciesMs: Float64Array;
}

export interface LatencySummary {
  readonly minMs: number;
  readonly meanMs: number;
  readonly maxMs: number;
  /** By percentile label: "p50", "p90", "p99", "p99.9". */
  readonly percentilesMs: Readonly<Record<string, number>>;
}

/** The value at fraction `p` of an ascending array (nearest rank: the smallest value
 * with at least p of the values at or below it). NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil(p * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** "p50", "p99.9". */
export function percentileLabel(p: number): string {
  return `p${Number((p * 100).toFixed(3))}`;
}

export function summarize(sorted: Float64Array): LatencySummary {
  let sum = 0;
  for (const value of sorted) sum += value;
  const percentilesMs: Record<string, number> = {};
  for (const p of PERCENTILES) percentilesMs[percentileLabel(p)] = percentile(sorted, p);
  return {
    minMs: sorted.length === 0 ? NaN : sorted[0],
    meanMs: sorted.length === 0 ? NaN : sum / sorted.length,
    maxMs: sorted.length === 0 ? NaN : sorted[sorted.length - 1],
    percentilesMs,
  };
}

/** Operations per second of a result: keys, so batched and single calls compare. Only
 * the calls that succeeded count: a failed call did no work. */
export function keysPerSecond(result: BenchResult): number {
  const keysPerCall = result.calls > 0 ? result.keys / result.calls : 0;
  return callsPerSecond(result) * keysPerCall;
}

/** Calls that succeeded, per second. */
export function callsPerSecond(result: BenchResult): number {
  return result.seconds > 0 ? (result.calls - result.errors) / result.seconds : 0;
}

/** The results as an aligned text table, one row per test. */
export function formatTable(results: readonly BenchResult[]): string {
  const header = [
    "test",
    "calls",
    "keys/s",
    "calls/s",
    ...PERCENTILES.map((p) => `${percentileLabel(p)} ms`),
    "max ms",
    "errors",
  ];
  const rows = results.map((result) => {
    const summary = summarize(result.sortedLatenciesMs);
    return [
      result.test,
      String(result.calls),
      String(Math.round(keysPerSecond(result))),
      String(Math.round(callsPerSecond(result))),
      ...PERCENTILES.map((p) => formatMs(summary.percentilesMs[percentileLabel(p)])),
      formatMs(summary.maxMs),
      String(result.errors),
    ];
  });
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

function formatMs(ms: number): string {
  if (Number.isNaN(ms)) return "-";
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(3);
}

// ---------------------------------------------------------------------------------------
// The histogram plot.

/** One bar group of the plot: calls whose latency fell in [fromMs, toMs). */
export interface HistogramBin {
  readonly fromMs: number;
  readonly toMs: number;
  readonly count: number;
}

/** Log-spaced bins from the smallest to the largest latency of all `series`, shared so
 * the tests can be compared bar by bar. `binsPerDecade` bins per factor of ten. */
export function logBins(series: readonly Float64Array[], binsPerDecade = 10): { edges: number[]; counts: number[][] } {
  const all = series.filter((values) => values.length > 0);
  if (all.length === 0) return { edges: [], counts: series.map(() => []) };
  const minMs = Math.max(Math.min(...all.map((values) => values[0])), 0.001);
  const maxMs = Math.max(...all.map((values) => values[values.length - 1]), minMs * 1.0001);
  const low = Math.floor(Math.log10(minMs) * binsPerDecade) / binsPerDecade;
  const high = Math.ceil(Math.log10(maxMs) * binsPerDecade) / binsPerDecade;
  const binCount = Math.max(1, Math.round((high - low) * binsPerDecade));
  const edges = Array.from({ length: binCount + 1 }, (_, i) => 10 ** (low + i / binsPerDecade));
  const counts = series.map((values) => {
    const bins = new Array(binCount).fill(0);
    for (const value of values) {
      const index = Math.floor((Math.log10(Math.max(value, 0.001)) - low) * binsPerDecade);
      bins[Math.min(binCount - 1, Math.max(0, index))]++;
    }
    return bins;
  });
  return { edges, counts };
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

/**
 * An SVG plot of the latency distribution of each result: the share of calls per
 * log-spaced latency bin, one colored outline per test, with the p50 and p99 of each
 * marked, axes labelled in ms and percent, and a legend. Self-contained (no scripts,
 * no external fonts), so a browser or an image viewer shows it as it is.
 */
export function renderLatencySvg(results: readonly BenchResult[], title: string): string {
  const width = 800;
  const height = 420;
  const margin = { left: 60, right: 20, top: 40, bottom: 50 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const { edges, counts } = logBins(results.map((result) => result.sortedLatenciesMs));
  const shares = counts.map((bins, i) => bins.map((count) => count / Math.max(1, results[i].sortedLatenciesMs.length)));
  // The vertical axis ends on the next multiple of 5% above the tallest bar.
  const shareMax = Math.max(0.05, Math.ceil(Math.max(0, ...shares.flat()) * 20) / 20);
  const logLow = edges.length > 0 ? Math.log10(edges[0]) : 0;
  const logHigh = edges.length > 0 ? Math.log10(edges[edges.length - 1]) : 1;
  const x = (ms: number) => margin.left + ((Math.log10(ms) - logLow) / Math.max(logHigh - logLow, 1e-9)) * plotWidth;
  const y = (share: number) => margin.top + plotHeight - (share / shareMax) * plotHeight;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
    `<line x1="${margin.left}" y1="${margin.top + plotHeight}" x2="${margin.left + plotWidth}" y2="${
      margin.top + plotHeight
    }" stroke="black"/>`,
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${margin.top + plotHeight}" stroke="black"/>`,
    `<text x="${margin.left + plotWidth / 2}" y="${
      height - 10
    }" text-anchor="middle">latency per call (ms, log scale)</text>`,
    `<text transform="translate(16 ${
      margin.top + plotHeight / 2
    }) rotate(-90)" text-anchor="middle">share of calls</text>`,
  ];
  for (const tick of decadeTicks(edges)) {
    const tx = x(tick);
    parts.push(
      `<line x1="${tx.toFixed(1)}" y1="${margin.top + plotHeight}" x2="${tx.toFixed(1)}" y2="${
        margin.top + plotHeight + 5
      }" stroke="black"/>`,
      `<text x="${tx.toFixed(1)}" y="${margin.top + plotHeight + 18}" text-anchor="middle">${tick}</text>`,
    );
  }
  for (let i = 0; i <= 4; i++) {
    const share = (shareMax * i) / 4;
    parts.push(
      `<line x1="${margin.left - 5}" y1="${y(share).toFixed(1)}" x2="${margin.left}" y2="${
        y(share).toFixed(1)
      }" stroke="black"/>`,
      `<text x="${margin.left - 8}" y="${(y(share) + 4).toFixed(1)}" text-anchor="end">${
        Number((share * 100).toFixed(2))
      }%</text>`,
    );
  }
  results.forEach((result, i) => {
    const color = COLORS[i % COLORS.length];
    if (edges.length > 1) {
      let path = `M${x(edges[0]).toFixed(1)},${y(0).toFixed(1)}`;
      shares[i].forEach((share, bin) => {
        path += ` L${x(edges[bin]).toFixed(1)},${y(share).toFixed(1)} L${x(edges[bin + 1]).toFixed(1)},${
          y(share).toFixed(1)
        }`;
      });
      path += ` L${x(edges[edges.length - 1]).toFixed(1)},${y(0).toFixed(1)}`;
      parts.push(`<path d="${path}" fill="${color}" fill-opacity="0.15" stroke="${color}" stroke-width="1.5"/>`);
      for (const p of [0.5, 0.99]) {
        const value = percentile(result.sortedLatenciesMs, p);
        if (Number.isNaN(value) || value <= 0) continue;
        const px = x(Math.max(value, edges[0])).toFixed(1);
        parts.push(
          `<line x1="${px}" y1="${margin.top}" x2="${px}" y2="${
            margin.top + plotHeight
          }" stroke="${color}" stroke-dasharray="4 3"/>`,
        );
      }
    }
    const summary = summarize(result.sortedLatenciesMs);
    const legend = `${result.test}: p50 ${formatMs(summary.percentilesMs.p50)} ms, p99 ${
      formatMs(summary.percentilesMs.p99)
    } ms`;
    const ly = margin.top + 14 + i * 16;
    parts.push(
      `<rect x="${width - margin.right - 250}" y="${ly - 10}" width="12" height="12" fill="${color}"/>`,
      `<text x="${width - margin.right - 232}" y="${ly}">${escapeXml(legend)}</text>`,
    );
  });
  parts.push(`<text x="${margin.left + 4}" y="${margin.top - 6}" fill="#555">dashed lines: p50 and p99</text>`);
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

/** The powers of ten (and 2x, 5x between them) within the bins' range. */
function decadeTicks(edges: readonly number[]): number[] {
  if (edges.length === 0) return [];
  const low = edges[0];
  const high = edges[edges.length - 1];
  const ticks: number[] = [];
  for (let exponent = Math.floor(Math.log10(low)); exponent <= Math.ceil(Math.log10(high)); exponent++) {
    for (const factor of [1, 2, 5]) {
      const tick = Number((factor * 10 ** exponent).toPrecision(3));
      if (tick >= low && tick <= high) ticks.push(tick);
    }
  }
  return ticks;
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}
