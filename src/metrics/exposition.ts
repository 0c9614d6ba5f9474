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

/** The value of the first sample named `name` whose labels include `labels`, or
 * undefined when there is none. */
export function sampleValue(exposition: Exposition, name: string, labels: Labels = {}): number | undefined {
  const sample = exposition.samples.find((sample) =>
    sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
  );
  return sample?.value;
}
