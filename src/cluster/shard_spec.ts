/**
 * How a shard is written on the command line and in the cluster's state:
 *
 *   [NAME=]MASTER[+REPLICA...]
 *
 *   127.0.0.1:7001                           a shard named after its master
 *   127.0.0.1:7001+127.0.0.1:7101            the same, with a replica for reads
 *   users-a=10.0.0.5:50051+10.0.0.6:50051    a shard with a name of its own
 *
 * A list of shards separates them with commas. The name is what the hash ring hashes, so
 * it must be spelled the same everywhere (`localhost:7001` and `127.0.0.1:7001` are two
 * different shards to the ring). A name of its own lets a shard's master move (a replica
 * promoted after a failure) without moving a single key: restate the shard with its new
 * master under the same name.
 *
 * @module
 */

import { formatAddress, parseAddress } from "../config/address.ts";
import { quote } from "../errors.ts";
import { UsageError } from "../config/usage_error.ts";

/** A shard: its name on the ring, its master and the replicas that may serve reads. */
export interface ShardSpec {
  readonly name: string;
  /** host:port of the master, which takes every write. */
  readonly master: string;
  /** host:port of each replica. */
  readonly replicas: readonly string[];
}

const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.:\-\[\]]{0,127}$/;

/** Parses `[NAME=]MASTER[+REPLICA...]`. `flag` names where the text came from. */
export function parseShardSpec(text: string, flag: string): ShardSpec {
  const trimmed = text.trim();
  const equals = trimmed.indexOf("=");
  const named = equals >= 0;
  const name = named ? trimmed.slice(0, equals) : undefined;
  const addresses = (named ? trimmed.slice(equals + 1) : trimmed).split("+");
  if (addresses.some((address) => address.trim() === "")) {
    throw new UsageError(
      `Invalid ${flag} ${quote(text)}: expected [NAME=]HOST:PORT[+REPLICA_HOST:PORT...], ` +
        `for example 127.0.0.1:7001 or a=127.0.0.1:7001+127.0.0.1:7101`,
    );
  }
  const [master, ...replicas] = addresses.map((address) => formatAddress(parseAddress(address, flag)));
  if (name !== undefined && !NAME_PATTERN.test(name)) {
    throw new UsageError(
      `Invalid ${flag} ${quote(text)}: shard name ${quote(name)} must be 1 to 128 letters, ` +
        `digits and . _ : - [ ], starting with a letter, digit or _`,
    );
  }
  const spec = { name: name ?? master, master, replicas };
  const seen = new Set<string>();
  for (const address of [master, ...replicas]) {
    if (seen.has(address)) throw new UsageError(`Invalid ${flag} ${quote(text)}: ${address} is listed twice`);
    seen.add(address);
  }
  return spec;
}

/** Parses a comma-separated list of shards and checks that names and addresses are
 * distinct across them. */
export function parseShardList(text: string, flag: string): ShardSpec[] {
  const specs = text.split(",").map((item) => parseShardSpec(item, flag));
  const problem = findConflict(specs);
  if (problem !== null) throw new UsageError(`Invalid ${flag}: ${problem}`);
  return specs;
}

/** The text form of a shard, as parseShardSpec reads it (the name only when it is not
 * the master's address). */
export function formatShardSpec(spec: ShardSpec): string {
  const addresses = [spec.master, ...spec.replicas].join("+");
  return spec.name === spec.master ? addresses : `${spec.name}=${addresses}`;
}

/** Describes the first clash among shards (a name or an address used twice), or null. */
export function findConflict(specs: readonly ShardSpec[]): string | null {
  const names = new Set<string>();
  const addresses = new Map<string, string>();
  for (const spec of specs) {
    if (names.has(spec.name)) return `shard ${JSON.stringify(spec.name)} is listed twice`;
    names.add(spec.name);
    for (const address of [spec.master, ...spec.replicas]) {
      const owner = addresses.get(address);
      if (owner !== undefined) {
        return `address ${address} belongs to both shard ${JSON.stringify(owner)} and shard ${
          JSON.stringify(spec.name)
        }`;
      }
      addresses.set(address, spec.name);
    }
  }
  return null;
}

/** Whether `reference` (a name or a master address) names `spec`. */
export function shardMatches(spec: ShardSpec, reference: string): boolean {
  return spec.name === reference || spec.master === reference;
}
