/**
 * Replication's wire forms: commands and dataset entries as they travel between nodes,
 * and the checks applied to what arrives.
 *
 * ## ReplicationCommand (pushes, StreamReplication, and inside Sync messages)
 *
 *   field                number  meaning
 *   type                 1       SET, DELETE or EXPIRE
 *   key                  2
 *   value                3       SET only
 *   seconds              4       relative TTL, for the C++ store (EXPIRE; SET with a TTL)
 *   sequence_id          5       the command's seq
 *   expires_at_ms        40      absolute deadline, unix ms; 0 for none
 *   replid               41      the history the seq belongs to; "" from the C++ store
 *
 * Our commands are absolute (see src/store/command.ts): a deadline travels as
 * `expires_at_ms`, so a replica applies exactly the master's deadline whatever the
 * delay. `seconds` is filled too, rounded up from the deadline at sending time, for a C++
 * replica, which knows only relative TTLs. Reading, `expires_at_ms` wins; an EXPIRE
 * without it is a C++ master's and its `seconds` count from the moment it is applied
 * (seconds <= 0 deletes, as for a client's EXPIRE). A SET's `seconds` are ignored
 * without `expires_at_ms`: the C++ store's SET never carries a TTL.
 *
 * Example: `SET k v` given a 60 s TTL by MSet at unix ms 1700000000000, seq 42, is
 * `{type: SET, key: "k", value: "v", seconds: 60, sequence_id: 42,
 *   expires_at_ms: 1700000060000, replid: "9f2c..."}`.
 *
 * ## Sync stream (see proto/kvstore.proto, SyncRequest and SyncMessage)
 *
 *   replica -> master   SyncRequest{replica_id, replid, seq, address,     handshake
 *                                   reports_handled}
 *   master -> replica   SYNC_PARTIAL{replid, seq}                          commands after seq follow
 *                   or  SYNC_FULL{replid, seq, reason, dropped, keys}
 *                       SYNC_SNAPSHOT{entries}...                          the dataset, in chunks
 *                       SYNC_FULL_END{replid, seq}
 *   master -> replica   SYNC_COMMANDS{commands}...                         seqs from seq + 1, no gaps
 *                       SYNC_PING{seq}                                     when idle
 *   replica -> master   SyncRequest{acked_seq, handled_messages}...        after each message handled
 *
 * Flow control: a replica that sets `reports_handled` counts the messages it has handled
 * (loaded, or applied and made durable) in `handled_messages`, and its master keeps at
 * most SYNC_UNHANDLED_BYTES_MAX of messages outstanding (see send_window.ts). While a
 * fullSync loads, `acked_seq` is -1: the replica holds no seq of the master's history.
 *
 * A snapshot is read from the live store while writes go on, so it may hold some keys as
 * they were after seq; the commands from seq + 1 that follow it repair that, because
 * commands are absolute and idempotent (replaying a suffix over any state the dataset
 * passed through since the suffix began gives the same result).
 *
 * Pure: no I/O.
 *
 * @module
 */

import { formatAddress, parseAddress } from "../config/address.ts";
import { REPLICA_ID_CHARS_MAX } from "../config/limits.ts";
import { UsageError } from "../config/usage_error.ts";
import { invalidArgument, quote } from "../errors.ts";
import type { WriteCommand } from "../store/command.ts";
import type { Entry } from "../store/store.ts";
import type { ReplicationCommand, SyncMessage, WireEntry } from "../transport/messages.ts";

/** Bytes charged per command or entry in a Sync message beyond its strings (field tags,
 * lengths, seq and deadline), for sizing messages. */
const WIRE_ITEM_OVERHEAD_BYTES = 32;

/** A command as it goes out: to our replicas (Sync), to simple pull clients and pushed
 * replicas (which may be the C++ store's, so `seconds` is filled). */
export function commandToWire(seq: number, command: WriteCommand, replid: string, nowMs: number): ReplicationCommand {
  switch (command.kind) {
    case "set":
      return {
        type: "SET",
        key: command.key,
        value: command.value,
        seconds: command.expiresAtMs === null ? 0 : secondsUntil(command.expiresAtMs, nowMs),
        sequence_id: String(seq),
        expires_at_ms: command.expiresAtMs ?? 0,
        replid,
      };
    case "delete":
      return { type: "DELETE", key: command.key, value: "", seconds: 0, sequence_id: String(seq), replid };
    case "expireAt":
      return {
        type: "EXPIRE",
        key: command.key,
        value: "",
        seconds: secondsUntil(command.expiresAtMs, nowMs),
        sequence_id: String(seq),
        expires_at_ms: command.expiresAtMs,
        replid,
      };
  }
}

/** The largest sequence_id a command may carry: the log writes seqs as 53-bit integers,
 * and a C++ master's ids are held one up (replica_applier.ts foreignIdToSeq). One past it
 * used to be taken, skipped to, and then refused by the log, leaving the replica unable
 * to record any later push. */
export const WIRE_SEQ_MAX = Number.MAX_SAFE_INTEGER - 1;

/** A received command, checked: its seq (or the foreign id, for the caller to map) and
 * the absolute command. Throws an INVALID_ARGUMENT KvError naming what is wrong. */
export function commandFromWire(message: ReplicationCommand, nowMs: number): { seq: number; command: WriteCommand } {
  const seq = int64(message.sequence_id, "sequence_id");
  if (seq < 0) throw invalidArgument(`replication: Invalid sequence_id ${seq}: must not be negative`);
  if (seq > WIRE_SEQ_MAX) {
    throw invalidArgument(
      `replication: Invalid sequence_id ${seq}: over ${WIRE_SEQ_MAX}, the largest a replica records`,
    );
  }
  if (typeof message.key !== "string" || message.key.length === 0) {
    throw invalidArgument(`replication: Cannot apply command seq ${seq}: the key is empty`);
  }
  const expiresAtMs = int64(message.expires_at_ms ?? 0, "expires_at_ms");
  if (expiresAtMs < 0) {
    throw invalidArgument(`replication: Invalid expires_at_ms ${expiresAtMs} for key ${quote(message.key)}`);
  }
  switch (message.type) {
    case "SET":
      return {
        seq,
        command: {
          kind: "set",
          key: message.key,
          value: message.value ?? "",
          expiresAtMs: expiresAtMs > 0 ? expiresAtMs : null,
        },
      };
    case "DELETE":
      return { seq, command: { kind: "delete", key: message.key } };
    case "EXPIRE": {
      if (expiresAtMs > 0) return { seq, command: { kind: "expireAt", key: message.key, expiresAtMs } };
      const seconds = Number(message.seconds ?? 0);
      if (!Number.isSafeInteger(seconds)) {
        throw invalidArgument(`replication: Invalid seconds ${message.seconds} for key ${quote(message.key)}`);
      }
      if (seconds <= 0) return { seq, command: { kind: "delete", key: message.key } };
      return { seq, command: { kind: "expireAt", key: message.key, expiresAtMs: nowMs + seconds * 1000 } };
    }
    default:
      throw invalidArgument(
        `replication: Cannot apply command seq ${seq}: unknown type ${quote(String(message.type))}`,
      );
  }
}

/**
 * Checks what a Sync handshake or a StreamReplication request says of the replica, which
 * the master shows in Info, /metrics and its log: `id` (at most REPLICA_ID_CHARS_MAX
 * characters, none a control character) and `address`, where it serves ("" for none, or
 * host:port). Returns the address formatted; throws an INVALID_ARGUMENT KvError.
 */
export function checkReplicaNaming(id: string, address: string, rpc: string): string {
  if (id.length > REPLICA_ID_CHARS_MAX || /\p{Cc}/u.test(id)) {
    throw invalidArgument(
      `replication: Cannot serve ${rpc} to replica ${quote(id)}: a replica id is at most ${REPLICA_ID_CHARS_MAX} ` +
        "characters, with no control characters",
    );
  }
  if (address === "") return "";
  try {
    return formatAddress(parseAddress(address, "address"));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw invalidArgument(`replication: Cannot serve ${rpc} to replica ${quote(id)}: ${error.message}`);
  }
}

/** A dataset entry for a SYNC_SNAPSHOT message. */
export function entryToWire(key: string, entry: Entry): WireEntry {
  return { key, value: entry.value, expires_at_ms: entry.expiresAtMs ?? 0, ttl_ms: 0 };
}

/** A received snapshot entry as the SET that recreates it. Throws on a bad entry. */
export function entryFromWire(entry: WireEntry): WriteCommand {
  if (typeof entry.key !== "string" || entry.key.length === 0) {
    throw invalidArgument("replication: Cannot load a snapshot entry: the key is empty");
  }
  const expiresAtMs = int64(entry.expires_at_ms, "expires_at_ms");
  if (expiresAtMs < 0) throw invalidArgument(`replication: Invalid expires_at_ms ${expiresAtMs} in the snapshot`);
  return { kind: "set", key: entry.key, value: entry.value ?? "", expiresAtMs: expiresAtMs > 0 ? expiresAtMs : null };
}

/** Bytes a command or entry with these strings takes in a message, roughly. */
export function wireItemBytes(key: string, value: string): number {
  return key.length + value.length + WIRE_ITEM_OVERHEAD_BYTES;
}

/** Bytes a Sync message takes on the wire, roughly: its items and a fixed overhead. */
export function syncMessageBytes(message: SyncMessage): number {
  let bytes = WIRE_ITEM_OVERHEAD_BYTES + message.replid.length + message.reason.length;
  for (const entry of message.entries) bytes += wireItemBytes(entry.key, entry.value);
  for (const command of message.commands) bytes += wireItemBytes(command.key, command.value);
  return bytes;
}

/** An int64 field (a decimal string as decoded, or a number) as a safe integer. */
export function int64(value: string | number | undefined, field: string): number {
  const number = Number(value ?? 0);
  if (!Number.isSafeInteger(number)) {
    throw invalidArgument(`replication: Invalid ${field} ${JSON.stringify(value)}: not a whole number in range`);
  }
  return number;
}

/** Whole seconds from `nowMs` until `expiresAtMs`, rounded up, within int32. */
function secondsUntil(expiresAtMs: number, nowMs: number): number {
  const seconds = Math.ceil((expiresAtMs - nowMs) / 1000);
  return Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, seconds));
}
