/**
 * Durability commands: `snapshot` and `digest` ask a running node; `repair` works on a
 * stopped node's data directory, offline.
 *
 * @module
 */

import { SNAPSHOT_CALL_DEADLINE_MS_DEFAULT } from "../../config/limits.ts";
import { UsageError } from "../../config/usage_error.ts";
import { KvError, plural } from "../../errors.ts";
import { DenoStorage, lockDataDir } from "../../persistence/deno_storage.ts";
import { holdsDataFiles, repairDataDir } from "../../persistence/repair.ts";
import { type ClientCommand, EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK } from "../command.ts";
import { formatBytes } from "../info_format.ts";

export const snapshot: ClientCommand = {
  name: "snapshot",
  args: "",
  summary: "Write a snapshot (kvstore.rdb) now, cut the log, and print what was written.",
  arity: [0, 0],
  async run(context) {
    // A snapshot of a large dataset takes longer than the usual call deadline.
    const deadlineMs = context.flags["timeout-ms"] === undefined ? SNAPSHOT_CALL_DEADLINE_MS_DEFAULT : undefined;
    const response = await context.client().snapshot(deadlineMs);
    const written = {
      path: response.path,
      keys: Number(response.keys),
      bytes: Number(response.bytes),
      seq: Number(response.seq),
      seqEnd: Number(response.seq_end),
      durationMs: Number(response.duration_ms),
      createdAtMs: Number(response.created_at_ms),
      logBytesBefore: Number(response.log_bytes_before),
      logBytesAfter: Number(response.log_bytes_after),
      logCut: response.log_cut,
    };
    if (context.json) {
      context.print(written);
      return EXIT_OK;
    }
    context.print(
      `Wrote ${written.path}: ${plural(written.keys, "key")}, ${formatBytes(written.bytes)}, seq ${written.seq}` +
        `${written.seqEnd === written.seq ? "" : ` to ${written.seqEnd}`}, in ${formatSeconds(written.durationMs)}`,
    );
    context.print(
      written.logCut
        ? `Cut the log from ${formatBytes(written.logBytesBefore)} to ${formatBytes(written.logBytesAfter)}`
        : `The log (${formatBytes(written.logBytesBefore)}) could not be cut; see the server log`,
    );
    return EXIT_OK;
  },
};

export const digest: ClientCommand = {
  name: "digest",
  args: "",
  summary: "Print a hash of all live keys, values and deadlines: equal digests mean equal data.",
  arity: [0, 0],
  async run(context) {
    const response = await context.client().digest();
    const result = {
      digest: response.digest,
      keys: Number(response.keys),
      seq: Number(response.seq),
      replid: response.replid,
    };
    context.print(context.json ? result : `${result.digest} keys=${result.keys} seq=${result.seq}`);
    return EXIT_OK;
  },
};

export const repair: ClientCommand = {
  name: "repair",
  args: "[--data-dir DIR] [--check]",
  summary: "Offline: cut damage off a stopped node's data files (set aside, never deleted).",
  offline: true,
  arity: [0, 0],
  flags: [
    { name: "data-dir", type: "string", valueName: "DIR", help: "The data directory (default: the working directory)" },
    { name: "check", type: "boolean", help: "Only check: report the first problem, change nothing (exit 1 if any)" },
  ],
  async run(context) {
    const dataDir = (context.flags["data-dir"] as string | undefined) ?? ".";
    const check = context.flags.check === true;
    try {
      if (!(await Deno.stat(dataDir)).isDirectory) throw new Error("it is not a directory");
    } catch (error) {
      // A --data-dir that is not a directory is a bad argument (exit 2), like any other.
      const detail = error instanceof Deno.errors.NotFound ? "no such directory" : (error as Error).message;
      throw new UsageError(`Cannot repair ${JSON.stringify(dataDir)}: ${detail}`);
    }
    // Checked before the lock, which would leave a kvstore.lock behind in a directory
    // that was never a data directory.
    if (!(await holdsDataFiles(new DenoStorage(dataDir)))) {
      context.warn(
        `kvstore repair: Cannot repair ${JSON.stringify(dataDir)}: it holds no kvstore.aof or kvstore.rdb ` +
          `(is --data-dir right?)`,
      );
      return EXIT_ERROR;
    }
    let lock: Deno.FsFile;
    try {
      lock = await lockDataDir(dataDir, "repair");
    } catch (error) {
      if (!(error instanceof KvError)) throw error;
      context.warn(`kvstore ${error.message}`);
      return EXIT_ERROR;
    }
    try {
      const lines: string[] = [];
      const result = await repairDataDir({
        storage: new DenoStorage(dataDir),
        dataDir,
        clock: Date.now,
        check,
        report: (line) => {
          lines.push(line);
          if (!context.json) context.print(line);
        },
      });
      if (context.json) {
        context.print({ problems: result.problems, fixes: result.fixes, dataset: result.dataset });
      } else if (result.dataset !== null) {
        const { keys, seq, replid, digest } = result.dataset;
        const verdict = result.fixes.length > 0 ? "now loads" : "loads as it is";
        context.print(
          `The data directory ${verdict}: ${plural(keys, "key")}, seq ${seq}, replid ${replid}, digest ${digest}`,
        );
      } else {
        context.print(`Run kvstore repair --data-dir ${dataDir} (without --check) to fix it.`);
      }
      return result.dataset === null ? EXIT_NOT_FOUND : EXIT_OK;
    } finally {
      lock.close();
    }
  },
};

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
