/**
 * Helpers for replication tests: masters and replicas as real processes, full dataset
 * dumps and their digests, and waiting until nodes converge.
 *
 * A dataset dump is every live key with its value and deadline, read with Scan and
 * sorted; two nodes hold the same data when their dumps (or the dumps' SHA-256 digests)
 * are equal. (A Digest rpc computed by the server would avoid moving the data; this
 * helper works on any node that serves Scan.)
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

/** The SHA-256 of a dump, in hex: equal digests, equal datasets. */
export async function digest(entries: DumpedEntry[]): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(entries));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(hash, (byte) => byte.toString(16).padStart(2, "0")).join("");
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

/** Waits until every replica holds the master's last seq, its history, and the same
 * dataset. Fails with both dumps' sizes and the first difference when time runs out. */
export async function waitForConvergence(
  master: ServerProcess,
  replicas: ServerProcess[],
  timeoutMs = CONVERGE_TIMEOUT_MS,
): Promise<DumpedEntry[]> {
  let masterDump: DumpedEntry[] = [];
  let lastProblem = "";
  try {
    await waitUntil(
      async () => {
        const masterInfo = await info(master.address);
        for (const replica of replicas) {
          const replicaInfo = await info(replica.address);
          if (replicaInfo.last_seq !== masterInfo.last_seq || replicaInfo.replid !== masterInfo.replid) {
            lastProblem = `${replica.address} at ${replicaInfo.replid.slice(0, 8)}:${replicaInfo.last_seq}, ` +
              `master at ${masterInfo.replid.slice(0, 8)}:${masterInfo.last_seq} (link ${replicaInfo.link_state})`;
            return false;
          }
        }
        masterDump = await dumpDataset(master.address);
        const masterAgain = await info(master.address);
        if (masterAgain.last_seq !== masterInfo.last_seq) return false;
        for (const replica of replicas) {
          const replicaDump = await dumpDataset(replica.address);
          if (JSON.stringify(replicaDump) !== JSON.stringify(masterDump)) {
            lastProblem = `${replica.address} holds ${replicaDump.length} keys, the master ${masterDump.length}; ` +
              `first difference: ${firstDifference(masterDump, replicaDump)}`;
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
    throw new Error(`${(error as Error).message}: ${lastProblem}`);
  }
  return masterDump;
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
