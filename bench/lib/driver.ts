/**
 * Spawning bench/load_driver.ts on its own core and reading its result.
 *
 * @module
 */

import type { LoadOptions, LoadResult } from "./load.ts";
import { canPin, REPO_ROOT } from "./processes.ts";

export interface DriverOptions extends LoadOptions {
  /** Write every key once before the load, so reads find values. */
  readonly preload?: boolean;
  /** The core to pin the driver to, when taskset is available. */
  readonly core: number | null;
}

/** Runs the load driver to completion and returns its figures. */
export async function drive(options: DriverOptions): Promise<LoadResult> {
  const deno = Deno.execPath();
  const args = [
    "run",
    "-A",
    "--quiet",
    `${REPO_ROOT}bench/load_driver.ts`,
    "--address",
    options.address,
    "--workload",
    options.workload,
    "--connections",
    String(options.connections),
    "--concurrency",
    String(options.concurrency),
    "--duration-ms",
    String(options.durationMs),
    "--value-bytes",
    String(options.valueBytes),
    "--key-space",
    String(options.keySpace),
    ...(options.preload ? ["--preload"] : []),
  ];
  const pinned = options.core !== null && canPin();
  const output = await new Deno.Command(pinned ? "taskset" : deno, {
    args: pinned ? ["-c", String(options.core), deno, ...args] : args,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`load driver failed with exit code ${output.code}`);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}
