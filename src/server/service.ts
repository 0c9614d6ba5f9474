/**
 * The data rpcs of kvstore.KeyValueStore: Get, Set, Contains, Delete, Expire, TTL.
 *
 * Each handler is a few lines: decode, call the {@linkcode Keyspace} (which validates
 * and enforces the role), encode. Responses keep the C++ store's meaning exactly:
 * `Delete.success` is true whenever the call was carried out, `found` says whether a
 * key was removed; `Expire.success` says whether the key existed; `TTL` answers -1 for
 * no deadline and -2 for no key.
 *
 * @module
 */

import type { Logger } from "../logging/logger.ts";
import type { grpc } from "../transport/grpc.ts";
import type {
  ContainsResponse,
  DeleteResponse,
  ExpireRequest,
  ExpireResponse,
  GetResponse,
  KeyRequest,
  MGetRequest,
  MGetResponse,
  MSetRequest,
  MSetResponse,
  ScanRequest,
  ScanResponse,
  SetRequest,
  SetResponse,
  TtlResponse,
} from "../transport/messages.ts";
import { invalidArgument } from "../errors.ts";
import type { Keyspace } from "./keyspace.ts";
import { unaryHandler } from "./status.ts";

/** grpc-js handlers by rpc name. */
export type Handlers = Record<string, grpc.UntypedHandleCall>;

export function dataHandlers(keyspace: Keyspace, logger: Logger): Handlers {
  return {
    Get: unaryHandler<KeyRequest, GetResponse>("Get", logger, ({ key }) => {
      const entry = keyspace.get(key);
      return entry === undefined ? { found: false, value: "" } : { found: true, value: entry.value };
    }),
    Set: unaryHandler<SetRequest, SetResponse>(
      "Set",
      logger,
      ({ key, value }) => keyspace.set(key, value).then(setDone),
    ),
    Contains: unaryHandler<KeyRequest, ContainsResponse>("Contains", logger, ({ key }) => {
      return { exists: keyspace.contains(key) };
    }),
    Delete: unaryHandler<KeyRequest, DeleteResponse>("Delete", logger, async ({ key }) => {
      const found = await keyspace.delete(key);
      return { success: true, found };
    }),
    Expire: unaryHandler<ExpireRequest, ExpireResponse>("Expire", logger, async ({ key, seconds }) => {
      return { success: await keyspace.expire(key, seconds) };
    }),
    TTL: unaryHandler<KeyRequest, TtlResponse>("TTL", logger, ({ key }) => {
      return { seconds: keyspace.ttlSeconds(key) };
    }),
    MGet: unaryHandler<MGetRequest, MGetResponse>("MGet", logger, ({ keys, include_deadlines }) => {
      const entries = keyspace.getMany(keys, include_deadlines === true);
      return {
        values: entries.map((entry) =>
          entry === undefined ? { found: false, value: "" } : { found: true, value: entry.value }
        ),
        // Cluster: rebalancing reads deadlines with values, so keys move with their TTLs.
        expires_at_ms: include_deadlines ? entries.map((entry) => entry?.expiresAtMs ?? 0) : [],
      };
    }),
    MSet: unaryHandler<MSetRequest, MSetResponse>("MSet", logger, async ({ entries, only_if_absent, fsync }) => {
      const count = await keyspace.setMany(
        entries.map((entry) => {
          const expiresAtMs = int64Field(entry.expires_at_ms, "expires_at_ms");
          const ttlMs = int64Field(entry.ttl_ms, "ttl_ms");
          return {
            key: entry.key,
            value: entry.value,
            expiresAtMs: expiresAtMs === 0 ? undefined : expiresAtMs,
            ttlMs: ttlMs === 0 ? undefined : ttlMs,
          };
        }),
        { onlyIfAbsent: only_if_absent === true, fsync: fsync === true },
      );
      return { success: true, count };
    }),
    Scan: unaryHandler<ScanRequest, ScanResponse>("Scan", logger, ({ cursor, prefix, limit, include_values }) => {
      const page = keyspace.scan(cursor, prefix, limit, include_values === true);
      return {
        cursor: page.cursor,
        entries: page.entries.map(([key, entry]) => ({
          key,
          value: include_values ? entry.value : "",
          expires_at_ms: include_values ? entry.expiresAtMs ?? 0 : 0,
          ttl_ms: 0,
        })),
      };
    }),
  };
}

const SET_SUCCESS: SetResponse = Object.freeze({ success: true });
function setDone(): SetResponse {
  return SET_SUCCESS;
}

/** An int64 field (a decimal string, as decoded) as a number; refuses values a
 * JavaScript number cannot hold exactly. */
function int64Field(value: string | number, field: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number)) {
    throw invalidArgument(`server: Invalid ${field} ${JSON.stringify(value)}: out of range`);
  }
  return number;
}
