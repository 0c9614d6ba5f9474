/**
 * `kvstore cluster status|add-shard|remove-shard`: operate a sharded cluster through its
 * router (--endpoint names the router).
 *
 *   $ kvstore cluster add-shard 127.0.0.1:7004
 *   moving: 1200 of about 2500 keys (48%), 4000 of 10000 scanned        (stderr)
 *   Added shard "127.0.0.1:7004": moved 2498 keys in 3.2 s              (stdout)
 *
 * Progress goes to stderr, one line a second at most, and the result to stdout; with
 * --json every progress message is a JSON line on stdout. Interrupting the command stops
 * watching, not the change: it goes on in the router (see `kvstore cluster status`).
 *
 * @module
 */

import { plural } from "../../errors.ts";
import { UsageError } from "../../config/usage_error.ts";
import type { ClusterStatusResponse, MigrationStatus } from "../../transport/messages.ts";
import { KvClientError } from "../client.ts";
import { ClusterClient } from "../cluster_client.ts";
import { describeProgress, formatClusterStatus } from "../cluster_format.ts";
import { type ClientCommand, type CommandContext, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK } from "../command.ts";

/** Most often a plain progress line is printed, in ms. */
const PROGRESS_LINE_INTERVAL_MS = 1000;

/** How long a progress stream may stay silent before the command gives up, in ms; the
 * router sends progress every 250 ms. */
const PROGRESS_IDLE_MS = 15_000;

export const cluster: ClientCommand = {
  name: "cluster",
  args: "status | add-shard SHARD | remove-shard SHARD",
  summary: "Show a router's shards, or add or remove a shard, moving keys while the cluster serves.",
  arity: [1, 2],
  flags: [
    { name: "force", type: "boolean", help: "add-shard: accept a shard that already holds keys" },
    {
      name: "forget",
      type: "boolean",
      help: "remove-shard: drop a dead shard from the ring without moving its keys (they are lost)",
    },
    { name: "detach", type: "boolean", help: "add-/remove-shard: return once the change has started" },
  ],
  async run(context) {
    const [verb, shard] = context.positionals;
    const expectShard = (wanted: boolean) => {
      if (wanted && shard === undefined) {
        throw new UsageError(`${verb} needs a SHARD; usage: kvstore cluster ${verb} SHARD`);
      }
      if (!wanted && shard !== undefined) throw new UsageError(`${verb} takes no argument`);
    };
    using admin = new ClusterClient(context.endpoint, {
      deadlineMs: context.timeoutMs,
      progressIdleMs: Math.max(context.timeoutMs, PROGRESS_IDLE_MS),
    });
    try {
      switch (verb) {
        case "status":
          expectShard(false);
          printStatus(context, await admin.status());
          return EXIT_OK;
        case "add-shard":
          expectShard(true);
          return await follow(context, admin.addShard(shard!, { force: context.flags.force === true }), "Added");
        case "remove-shard":
          expectShard(true);
          return await follow(
            context,
            admin.removeShard(shard!, { forget: context.flags.forget === true }),
            context.flags.forget === true ? "Forgot" : "Removed",
          );
        default:
          throw new UsageError(
            `Unknown cluster command ${JSON.stringify(verb)}: expected status, add-shard or remove-shard`,
          );
      }
    } catch (error) {
      if (error instanceof KvClientError && error.codeName === "UNIMPLEMENTED") {
        context.warn(`kvstore cluster: ${context.endpoint} is not a router (kvstore cluster talks to kvstore router)`);
        return EXIT_ERROR;
      }
      throw error;
    }
  },
};

/** Prints a change's progress until it is done (or, with --detach, until it started). */
async function follow(
  context: CommandContext,
  progress: AsyncGenerator<MigrationStatus>,
  verb: string,
): Promise<number> {
  const detach = context.flags.detach === true;
  let lastLineMs = 0;
  let lastState = "";
  let last: MigrationStatus | undefined;
  for await (const status of progress) {
    // Interrupted (Ctrl-C in the shell): stop watching; the change goes on at the router.
    if (context.signal.aborted) return EXIT_INTERRUPTED;
    last = status;
    if (context.json) context.print(migrationJson(status));
    else if (status.state !== "done") {
      const now = Date.now();
      if (status.state !== lastState || now - lastLineMs >= PROGRESS_LINE_INTERVAL_MS) {
        context.warn(describeProgress(status));
        lastLineMs = now;
      }
    }
    lastState = status.state;
    if (detach && status.state !== "done") {
      if (!context.json) context.print(`Started: ${describeProgress(status)} (follow it with kvstore cluster status)`);
      return EXIT_OK;
    }
  }
  if (last === undefined || last.state !== "done") {
    context.warn("kvstore cluster: The router ended the stream before the change was done; see kvstore cluster status");
    return EXIT_ERROR;
  }
  if (!context.json) {
    const seconds = (Number(last.finished_at_ms) - Number(last.started_at_ms)) / 1000;
    const moved = Number(last.keys_moved);
    context.print(
      `${verb} shard ${JSON.stringify(last.shard)}: moved ${plural(moved, "key")} in ${seconds.toFixed(1)} s` +
        (seconds > 0 && moved > 0 ? ` (${Math.round(moved / seconds)} keys/s)` : ""),
    );
  }
  return EXIT_OK;
}

/** A progress message for --json, its counts and times as numbers (the wire's int64
 * fields arrive as strings), as `info --json` prints them. */
function migrationJson(status: MigrationStatus): MigrationStatus {
  return {
    ...status,
    started_at_ms: Number(status.started_at_ms),
    keys_moved: Number(status.keys_moved),
    keys_to_move: Number(status.keys_to_move),
    keys_scanned: Number(status.keys_scanned),
    keys_to_scan: Number(status.keys_to_scan),
    finished_at_ms: Number(status.finished_at_ms),
  };
}

function printStatus(context: CommandContext, status: ClusterStatusResponse): void {
  if (context.json) {
    context.print({
      ...status,
      epoch: Number(status.epoch),
      shards: status.shards.map((shard) => ({
        ...shard,
        keys: Number(shard.keys),
        dataset_bytes: Number(shard.dataset_bytes),
      })),
      migration: status.migration === null ? null : migrationJson(status.migration),
    });
    return;
  }
  for (const line of formatClusterStatus(status)) context.print(line);
}
