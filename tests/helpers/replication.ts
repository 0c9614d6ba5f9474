/**
 * Helpers for replication tests: masters and replicas as real processes, their dataset
 * digests and dumps, and waiting until nodes converge.
 *
 * Two nodes hold the same data when their Digest rpcs agree: the digest of every live
 * key with its value and deadline, read in one step with the seq and history it
 * describes. A dump (every live key, read with Scan, sorted) shows what differs.
 *
 * @module
 */

import { KvClient } from "../../src/client/client.ts";
import type { InfoResponse } from "../../src/transport/messages.ts";
import { type ServerProcess, type StartOptions, startServer, waitUntil } from "./server_process.ts";

/** Bounded waits for a loaded 2-core machine. */
export const CONVERGE_TIMEOUT_MS = 30_000;

export type DumpedEntry = [key: string, value: string, expiresAtMs: number | null];

/** Every live key of the node at `address`, with value and deadline, sorted by key. */
export async function dumpDataset(address: string): Promise<DumpedEntry[]> {
  using client = new KvClient(address, { deadlineMs: 30_000 });
  const entries: DumpedEntry[] = [];
  for await (const entry of client.scanAll({ includeValues: true, pageSize: 5000 })) {
    entries.push([entry.key, entry.value, entry.expiresAtMs]);
  }
  return entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** A node's dataset digest, with the history and seq it describes. */
export interface NodeDigest {
  readonly replid: string;
  readonly seq: number;
  readonly keys: number;
  readonly digest: string;
}

export async function digestOf(address: string): Promise<NodeDigest> {
  using client = new KvClient(address, { deadlineMs: 30_000 });
  const { replid, seq, keys, digest } = await client.digest();
  return { replid, seq: Number(seq), keys: Number(keys), digest };
}

export async function info(address: string): Promise<InfoResponse> {
  using client = new KvClient(address);
  return await client.info();
}

/** Starts a master with `args`. */
export function startMaster(args: string[] = [], options: StartOptions = {}): Promise<ServerProcess> {
  return startServer({ ...options, args: ["--master", ...args] });
}

/** Starts a replica of `master` (a process or an address) with `args`. */
export function startReplica(
  master: ServerProcess | string,
  args: string[] = [],
  options: StartOptions = {},
): Promise<ServerProcess> {
  const masterAddress = typeof master === "string" ? master : master.address;
  return startServer({ ...options, args: ["--replica", "--master-address", masterAddress, ...args] });
}

/**
 * Waits until every replica holds the master's history, last seq and dataset (equal
 * digests), and returns the master's dataset as it is then (callers use it once writes
 * have stopped). Fails with the positions and the first difference of the dumps when
 * time runs out.
 */
export async function waitForConvergence(
  master: ServerProcess,
  replicas: ServerProcess[],
  timeoutMs = CONVERGE_TIMEOUT_MS,
): Promise<DumpedEntry[]> {
  let lagging: { replica: ServerProcess; problem: string } | null = null;
  try {
    await waitUntil(
      async () => {
        const expected = await digestOf(master.address);
        for (const replica of replicas) {
          const actual = await digestOf(replica.address);
          if (actual.replid !== expected.replid || actual.seq !== expected.seq || actual.digest !== expected.digest) {
            lagging = {
              replica,
              problem: `${replica.address} at ${position(actual)}, master at ${position(expected)}`,
            };
            return false;
          }
          // The data can match before a fullSync's files are written (the replica swaps
          // the dataset in, then writes its snapshot); the link is "up" only after.
          const link = (await info(replica.address)).link_state ?? "";
          if (link !== "up" && link !== "push-only") {
            lagging = { replica, problem: `${replica.address} holds the data, but its link is "${link}"` };
            return false;
          }
        }
        return true;
      },
      "the replicas hold the master's dataset",
      timeoutMs,
      100,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}: ${await explain(master, lagging)}`);
  }
  return await dumpDataset(master.address);
}

function position(node: NodeDigest): string {
  return `${node.replid.slice(0, 8)}:${node.seq} (${node.keys} keys, digest ${node.digest})`;
}

/** What a replica that did not converge shows: its link and the first difference. */
async function explain(
  master: ServerProcess,
  lagging: { replica: ServerProcess; problem: string } | null,
): Promise<string> {
  if (lagging === null) return "no node answered";
  try {
    const [replicaInfo, masterDump, replicaDump] = await Promise.all([
      info(lagging.replica.address),
      dumpDataset(master.address),
      dumpDataset(lagging.replica.address),
    ]);
    return `${lagging.problem}, link ${replicaInfo.link_state}; first difference: ` +
      firstDifference(masterDump, replicaDump);
  } catch (error) {
    return `${lagging.problem} (${error})`;
  }
}

function firstDifference(a: DumpedEntry[], b: DumpedEntry[]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) {
      return `master ${JSON.stringify(a[i])} vs replica ${JSON.stringify(b[i])}`;
    }
  }
  return "none";
}

/** Counts the matches of `pattern` in a process's log. */
export function countLog(server: ServerProcess, pattern: RegExp): number {
  return server.stderr.match(
    new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : pattern.flags + "g"),
  )
    ?.length ?? 0;
}

/**
 * Points `replica` (which has synced nothing) at `master`, waits for its first sync and
 * for it to hold key "k", then pauses the master: a `read` of "k" that succeeds from then
 * on can only have been answered by the replica. Resolves once one has (bounded by
 * waitUntil), with the master resumed.
 */
export async function expectReadsFromReplicaOnceSynced(
  master: ServerProcess,
  replica: ServerProcess,
  read: () => Promise<string | undefined>,
): Promise<void> {
  using direct = new KvClient(replica.address);
  await direct.replicaOf(master.address);
  await waitUntil(async () => (await direct.info()).first_sync_done === true, "the replica syncs");
  await waitUntil(async () => await direct.get("k") === "v", "the replica has the write");
  master.signal("SIGSTOP");
  try {
    // A replica found unsynced is asked again once that verdict is a second old.
    await waitUntil(async () => await read().catch(() => undefined) === "v", "a read from the replica");
  } finally {
    master.signal("SIGCONT");
  }
}
