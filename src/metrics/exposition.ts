/**
 * Reading the Prometheus text exposition format back: the inverse of
 * {@linkcode MetricsRegistry.render}, for tests that scrape a node and for tools that
 * want one figure from /metrics without a Prometheus server.
 *
 * It reads what the format allows for the three types kvstore writes: `# HELP` and
 * `# TYPE` lines, other comments (ignored), blank lines, and samples
 * `name{label="value",...} value [timestamp]` with escaped label values. Anything else is
 * refused with the line number, so a test notices a malformed exposition.
 *
 * @module
 */

import type { Labels } from "./registry.ts";

export interface ParsedSample {
  readonly name: string;
  readonly labels: Labels;
  readonly value: number;
}

export interface Exposition {
  readonly samples: readonly ParsedSample[];
  /** `# TYPE` by metric name. */
  readonly types: ReadonlyMap<string, string>;
  /** `# HELP` by metric name, unescaped. */
  readonly help: ReadonlyMap<string, string>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+-?[0-9]+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;

/** Parses an exposition; throws an Error naming the line on anything malformed. */
export function parseExposition(text: string): Exposition {
  const samples: ParsedSample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  text.split("\n").forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line.trim() === "") return;
    if (line.startsWith("#")) {
      const match = /^#\s+(HELP|TYPE)\s+(\S+)\s?(.*)$/.exec(line);
      if (match === null) return;
      if (match[1] === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(match[3])) {
          throw new Error(`metrics: Cannot parse ${where}: unknown type ${JSON.stringify(match[3])}`);
        }
        types.set(match[2], match[3]);
      } else {
        help.set(match[2], match[3].replaceAll("\\n", "\n").replaceAll("\\\\", "\\"));
      }
      return;
    }
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`metrics: Cannot parse ${where}: ${JSON.stringify(line)}`);
    const value = parseValue(match[3]);
    if (value === undefined) throw new Error(`metrics: Cannot parse ${where}: bad value ${JSON.stringify(match[3])}`);
    samples.push({ name: match[1], labels: parseLabels(match[2] ?? "", where), value });
  });
  return { samples, types, help };
}

function parseValue(text: string): number | undefined {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const value = Number(text);
  return text !== "" && !Number.isNaN(value) ? value : undefined;
}

function parseLabels(text: string, where: string): Labels {
  const labels: Record<string, string> = {};
  if (text === "") return labels;
  const body = text.slice(1, -1);
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < body.length) {
    const start = LABEL.lastIndex;
    const match = LABEL.exec(body);
    if (match === null) {
      throw new Error(`metrics: Cannot parse ${where}: bad labels at ${JSON.stringify(body.slice(start))}`);
    }
    labels[match[1]] = match[2].replace(/\\(.)/g, (_, char: string) => char === "n" ? "\n" : char);
    if (match[3] === "") break;
  }
  return labels;
}

/**
 * The rules of the format that a parse alone does not check, for tests that scrape a
 * node: every sample belongs to a family declared by `# HELP` and `# TYPE` lines before
 * it, with its samples together; no series appears twice; counters are named `_total`;
 * each histogram series has buckets with ascending `le` ending at `+Inf`, cumulative
 * counts, and `_sum` and `_count`, the count equal to the `+Inf` bucket. Returns the
 * problems found, each naming its line; none for a valid exposition.
 */
export function expositionProblems(text: string): string[] {
  const problems: string[] = [];
  const declared = new Map<string, { type?: string; help: boolean }>();
  const finished = new Set<string>();
  const seen = new Set<string>();
  let current: string | undefined;
  type Series = { buckets: [number, number][]; sum?: number; count?: number; line: number };
  const histograms = new Map<string, Series>();
  const familyOf = (name: string) => {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && declared.get(base)?.type === "histogram") return { base, suffix };
    }
    return { base: name, suffix: "" };
  };
  const enter = (family: string, line: number) => {
    if (family === current) return;
    if (current !== undefined) finished.add(current);
    if (finished.has(family)) problems.push(`line ${line}: ${family} appears again after other metrics`);
    current = family;
  };
  text.split("\n").forEach((line, index) => {
    const number = index + 1;
    if (line.trim() === "") return;
    const meta = /^#\s+(HELP|TYPE)\s+(\S+)\s?(.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name, rest] = meta;
      enter(name, number);
      const entry = declared.get(name) ?? { help: false };
      if (kind === "TYPE") {
        if (entry.type !== undefined) problems.push(`line ${number}: a second TYPE for ${name}`);
        entry.type = rest;
        if (rest === "counter" && !name.endsWith("_total")) {
          problems.push(`line ${number}: counter ${name} lacks _total`);
        }
      } else {
        if (entry.help) problems.push(`line ${number}: a second HELP for ${name}`);
        entry.help = true;
      }
      declared.set(name, entry);
      return;
    }
    if (line.startsWith("#")) return;
    const match = SAMPLE.exec(line);
    if (match === null) return problems.push(`line ${number}: not a sample: ${JSON.stringify(line)}`);
    const { base, suffix } = familyOf(match[1]);
    const family = declared.get(base);
    if (family?.type === undefined || !family.help) {
      problems.push(`line ${number}: ${match[1]} has no HELP and TYPE before it`);
    }
    enter(base, number);
    if (seen.has(`${match[1]}${match[2] ?? ""}`)) problems.push(`line ${number}: the series ${match[1]} appears twice`);
    seen.add(`${match[1]}${match[2] ?? ""}`);
    if (family?.type !== "histogram") return;
    const labels = { ...parseLabels(match[2] ?? "", `line ${number}`) };
    const le = labels.le;
    delete labels.le;
    const key = `${base}${JSON.stringify(labels)}`;
    const series = histograms.get(key) ?? { buckets: [], line: number };
    histograms.set(key, series);
    const value = parseValue(match[3]) ?? NaN;
    if (suffix === "_bucket") series.buckets.push([le === undefined ? NaN : parseValue(le) ?? NaN, value]);
    else if (suffix === "_sum") series.sum = value;
    else if (suffix === "_count") series.count = value;
  });
  for (const [key, series] of histograms) {
    const where = `line ${series.line}: histogram ${key}`;
    const bounds = series.buckets.map(([bound]) => bound);
    if (bounds.some((bound, i) => Number.isNaN(bound) || (i > 0 && bound <= bounds[i - 1]))) {
      problems.push(`${where} has buckets whose le is missing or not ascending`);
    }
    if (bounds.at(-1) !== Infinity) problems.push(`${where} has no le="+Inf" bucket last`);
    if (series.buckets.some(([, count], i) => i > 0 && count < series.buckets[i - 1][1])) {
      problems.push(`${where} has bucket counts that are not cumulative`);
    }
    if (series.sum === undefined || series.count === undefined) problems.push(`${where} lacks _sum or _count`);
    else if (series.count !== series.buckets.at(-1)?.[1]) {
      problems.push(`${where} has _count unequal to its +Inf bucket`);
    }
  }
  return problems;
}

/** The value of the first sample named `name` whose labels include `labels`, or
 * undefined when there is none. */
export function sampleValue(exposition: Exposition, name: string, labels: Labels = {}): number | undefined {
  const sample = exposition.samples.find((sample) =>
    sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
  );
  return sample?.value;
}
