/**
 * Real sharded clusters for integration tests: shards (kvstore masters on free ports)
 * and a `kvstore router` in front of them, each killed by PID when the test's `await
 * using` scope ends.
 *
 * @module
 */

import { KvClient } from "../../src/client/client.ts";
import { HashRing } from "../../src/cluster/ring.ts";
import { VNODES_PER_SHARD_DEFAULT } from "../../src/config/limits.ts";
import { ServerProcess, spawnKvstore, startServer } from "./server_process.ts";

export interface RouterOptions {
  /** --shards; omitted for a restart that reads the state file. */
  readonly shards?: readonly string[];
  /** A data directory to reuse (a restart); a fresh temp dir otherwise. */
  readonly dataDir?: string;
  readonly args?: readonly string[];
  readonly address?: string;
  /** Shell commands to run before the router (see kvstoreCommand). */
  readonly shellSetup?: string;
}

/** Starts `kvstore router` and resolves once it listens. */
export async function startRouter(options: RouterOptions = {}): Promise<ServerProcess> {
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "kvstore-router-" });
  const args = [
    "router",
    "--address",
    options.address ?? "127.0.0.1:0",
    "--data-dir",
    dataDir,
    ...(options.shards === undefined ? [] : ["--shards", options.shards.join(",")]),
    ...(options.args ?? []),
  ];
  const router = new ServerProcess(spawnKvstore(args, { shellSetup: options.shellSetup }), dataDir, ownsDataDir);
  try {
    const match = await router.waitForLog(/Listening on (\S+:\d+)/);
    router.address = match[1];
    return router;
  } catch (error) {
    await router[Symbol.asyncDispose]();
    throw error;
  }
}

/** Shards and a router; disposing kills them all. */
export class Cluster implements AsyncDisposable {
  readonly shards: ServerProcess[];
  router: ServerProcess;
  /** Flags every shard started for this cluster gets. */
  readonly shardArgs: readonly string[];

  constructor(shards: ServerProcess[], router: ServerProcess, shardArgs: readonly string[] = []) {
    this.shards = shards;
    this.router = router;
    this.shardArgs = shardArgs;
  }

  /** The ring the router uses for `shards` (default: every shard started). */
  ring(shards: readonly ServerProcess[] = this.shards): HashRing {
    return new HashRing(shards.map((shard) => shard.address), VNODES_PER_SHARD_DEFAULT);
  }

  /** A client of the router. */
  client(deadlineMs = 10_000): KvClient {
    return new KvClient(this.router.address, { deadlineMs });
  }

  /** Starts another shard (not yet on the ring). */
  async addProcess(): Promise<ServerProcess> {
    const shard = await startServer({ args: this.shardArgs });
    this.shards.push(shard);
    return shard;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([this.router, ...this.shards].map((process) => process[Symbol.asyncDispose]()));
  }
}

/** Starts `count` shards (each with `shardArgs`) and a router over them. */
export async function startCluster(
  count: number,
  routerArgs: readonly string[] = [],
  shardArgs: readonly string[] = [],
): Promise<Cluster> {
  const shards = await Promise.all(Array.from({ length: count }, () => startServer({ args: shardArgs })));
  try {
    const router = await startRouter({ shards: shards.map((shard) => shard.address), args: routerArgs });
    return new Cluster(shards, router, shardArgs);
  } catch (error) {
    await Promise.all(shards.map((shard) => shard[Symbol.asyncDispose]()));
    throw error;
  }
}

/** Every live key on one node, with value and deadline, read with Scan. */
export async function keysOn(address: string): Promise<Map<string, { value: string; expiresAtMs: number | null }>> {
  using client = new KvClient(address, { deadlineMs: 20_000 });
  const keys = new Map<string, { value: string; expiresAtMs: number | null }>();
  for await (const entry of client.scanAll({ pageSize: 5000, includeValues: true })) {
    keys.set(entry.key, { value: entry.value, expiresAtMs: entry.expiresAtMs });
  }
  return keys;
}
