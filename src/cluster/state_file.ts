/**
 * The router's state file: the cluster membership, kept so that a restarted router
 * routes exactly as before and finishes a rebalancing it had begun.
 *
 * ## Format
 *
 * `kvstore-cluster.json` in the router's data directory: one JSON document, UTF-8, with
 * a trailing newline, written whole on every membership change (they are rare):
 *
 * ```json
 * {
 *   "format": "kvstore-cluster",
 *   "version": 1,
 *   "epoch": 4,
 *   "vnodes": 512,
 *   "shards": [
 *     { "name": "127.0.0.1:7001", "master": "127.0.0.1:7001", "replicas": [] },
 *     { "name": "b", "master": "127.0.0.1:7002", "replicas": ["127.0.0.1:7102"] }
 *   ],
 *   "migration": {
 *     "kind": "add",
 *     "shard": { "name": "127.0.0.1:7003", "master": "127.0.0.1:7003", "replicas": [] },
 *     "startedAtMs": 1764083400000
 *   }
 * }
 * ```
 *
 * - `format` and `version` identify the file; a version this build does not know is
 *   refused rather than guessed at.
 * - `shards` is the ring (before the migration, if one is under way); `migration` is
 *   null when the ring is stable. See membership.ts for what each field means.
 *
 * ## Writing and reading back
 *
 * A new state is written to `kvstore-cluster.json.tmp`, fsynced, renamed over the old
 * file, and the directory is fsynced, so after a crash the file holds the old state or
 * the new one, whole. The membership is written before the router acts on it: a
 * rebalancing is recorded before its first key moves, and its end is recorded before
 * the router routes by the new ring alone. Reading checks every field and refuses a
 * file it cannot trust with a message naming the file and the field. The file is plain
 * JSON so an operator can read it, and in an emergency edit it while the router is
 * stopped (for instance to change a shard's master address); the router checks it
 * again on start.
 *
 * @module
 */

import { writeFileAtomic } from "../client/files.ts";
import { formatAddress, parseAddress } from "../config/address.ts";
import { VNODES_PER_SHARD_MAX } from "../config/limits.ts";
import { KvError } from "../errors.ts";
import type { Membership, Migration } from "./membership.ts";
import { findConflict, parseShardSpec, type ShardSpec } from "./shard_spec.ts";

export const STATE_FILE_NAME = "kvstore-cluster.json";
const FORMAT = "kvstore-cluster";
const VERSION = 1;

/** The file's text for `membership`. */
export function encodeState(membership: Membership): string {
  const spec = (shard: ShardSpec) => ({ name: shard.name, master: shard.master, replicas: [...shard.replicas] });
  const document = {
    format: FORMAT,
    version: VERSION,
    epoch: membership.epoch,
    vnodes: membership.vnodes,
    shards: membership.shards.map(spec),
    migration: membership.migration === null ? null : {
      kind: membership.migration.kind,
      shard: spec(membership.migration.shard),
      startedAtMs: membership.migration.startedAtMs,
    },
  };
  return JSON.stringify(document, null, 2) + "\n";
}

/** Reads the file's text back; throws an Error whose message names `path` and the
 * problem. */
export function decodeState(text: string, path: string): Membership {
  const fail = (problem: string): never => {
    throw new Error(`cluster: Cannot read ${path}: ${problem}`);
  };
  let document: Record<string, unknown>;
  try {
    document = JSON.parse(text);
  } catch (error) {
    return fail(`it is not valid JSON (${error instanceof Error ? error.message : error})`);
  }
  if (typeof document !== "object" || document === null) return fail("it is not a JSON object");
  if (document.format !== FORMAT) return fail(`"format" is ${JSON.stringify(document.format)}, not "${FORMAT}"`);
  if (document.version !== VERSION) {
    return fail(`"version" ${JSON.stringify(document.version)} is not one this build reads (${VERSION})`);
  }
  const epoch = document.epoch;
  if (!Number.isSafeInteger(epoch) || (epoch as number) < 1) return fail(`"epoch" must be a positive integer`);
  const vnodes = document.vnodes;
  if (!Number.isSafeInteger(vnodes) || (vnodes as number) < 1 || (vnodes as number) > VNODES_PER_SHARD_MAX) {
    return fail(`"vnodes" must be an integer from 1 to ${VNODES_PER_SHARD_MAX}`);
  }
  if (!Array.isArray(document.shards) || document.shards.length === 0) return fail(`"shards" must be a non-empty list`);
  const shards = document.shards.map((shard, i) => decodeShard(shard, `"shards"[${i}]`, fail));
  const conflict = findConflict(shards);
  if (conflict !== null) return fail(conflict);
  let migration: Migration | null = null;
  if (document.migration !== null && document.migration !== undefined) {
    const raw = document.migration as Record<string, unknown>;
    if (raw.kind !== "add" && raw.kind !== "remove") return fail(`"migration.kind" must be "add" or "remove"`);
    if (!Number.isSafeInteger(raw.startedAtMs)) return fail(`"migration.startedAtMs" must be an integer`);
    const shard = decodeShard(raw.shard, `"migration.shard"`, fail);
    const known = shards.find((spec) => spec.name === shard.name);
    if (raw.kind === "add" && known !== undefined) return fail(`the shard being added is already in "shards"`);
    if (raw.kind === "add" && findConflict([...shards, shard]) !== null) {
      return fail(`the shard being added shares an address with a shard in "shards"`);
    }
    if (raw.kind === "remove" && known === undefined) return fail(`the shard being removed is not in "shards"`);
    migration = { kind: raw.kind, shard: known ?? shard, startedAtMs: raw.startedAtMs as number };
  }
  return { epoch: epoch as number, vnodes: vnodes as number, shards, migration };
}

function decodeShard(raw: unknown, where: string, fail: (problem: string) => never): ShardSpec {
  const shard = raw as Record<string, unknown> | null;
  if (typeof shard !== "object" || shard === null) return fail(`${where} must be an object`);
  const { name, master, replicas } = shard;
  if (typeof name !== "string" || typeof master !== "string" || !Array.isArray(replicas)) {
    return fail(`${where} needs "name" and "master" strings and a "replicas" list`);
  }
  if (!replicas.every((replica) => typeof replica === "string")) return fail(`${where}.replicas must hold strings`);
  try {
    const addresses = [master, ...replicas].map((address) => formatAddress(parseAddress(address, where)));
    return parseShardSpec(`${name}=${addresses.join("+")}`, where);
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
}

/** The state in `dataDir`, or null when the router has none yet. */
export async function readState(dataDir: string): Promise<Membership | null> {
  const path = `${dataDir}/${STATE_FILE_NAME}`;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new KvError("FAILED_PRECONDITION", `cluster: Cannot read ${path}: ${describeFsError(error)}`);
  }
  try {
    return decodeState(text, path);
  } catch (error) {
    throw new KvError("FAILED_PRECONDITION", error instanceof Error ? error.message : String(error));
  }
}

/** Replaces the state in `dataDir` with `membership`, crash-safely: write a temporary
 * file, fsync it, rename it over the old one, fsync the directory. */
export async function writeState(dataDir: string, membership: Membership): Promise<void> {
  const path = `${dataDir}/${STATE_FILE_NAME}`;
  try {
    await writeFileAtomic(path, encodeState(membership));
  } catch (error) {
    throw new KvError("UNAVAILABLE", `cluster: Cannot save the cluster state to ${path}: ${describeFsError(error)}`);
  }
}

function describeFsError(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  return error instanceof Error ? error.message : String(error);
}
