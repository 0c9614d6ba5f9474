/**
 * Recording benchmark figures in bench/results/, with the date and the machine, as a
 * Markdown table a person reads and a JSON file a script compares.
 *
 * @module
 */

import { REPO_ROOT } from "./processes.ts";

export interface Machine {
  readonly hostname: string;
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly os: string;
  readonly deno: string;
}

/** Describes the machine the benchmark ran on. */
export function describeMachine(): Machine {
  let cpuModel = "unknown";
  try {
    const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
    cpuModel = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? cpuModel;
  } catch { /* not Linux */ }
  return {
    hostname: Deno.hostname(),
    cpus: navigator.hardwareConcurrency,
    cpuModel,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 1024 ** 3),
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
  };
}

/** A Markdown table from rows of objects sharing keys. */
export function markdownTable(rows: Record<string, string | number>[]): string {
  if (rows.length === 0) return "";
  const columns = Object.keys(rows[0]);
  const lines = [
    `| ${columns.join(" | ")} |`,
    `| ${columns.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${columns.map((column) => String(row[column])).join(" | ")} |`),
  ];
  return lines.join("\n");
}

/** Writes `bench/results/<name>-<date>.md` and `.json`; returns the Markdown path. */
export async function writeResults(name: string, markdown: string, data: unknown): Promise<string> {
  const date = new Date().toISOString().slice(0, 10);
  const directory = `${REPO_ROOT}bench/results`;
  await Deno.mkdir(directory, { recursive: true });
  const base = `${directory}/${name}-${date}`;
  await Deno.writeTextFile(`${base}.md`, markdown.endsWith("\n") ? markdown : markdown + "\n");
  await Deno.writeTextFile(`${base}.json`, JSON.stringify({ date, machine: describeMachine(), data }, null, 2) + "\n");
  return `${base}.md`;
}
