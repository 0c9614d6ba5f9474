/**
 * Write commands: the absolute, idempotent form in which every change to the dataset
 * is applied, logged and replicated.
 *
 * A client's EXPIRE carries seconds relative to "now"; by the time it becomes a command
 * it is an absolute deadline (`expireAt`), and EXPIRE with seconds <= 0 has become a
 * `delete`. Applying the same command twice, or a suffix of the command sequence over
 * any state the dataset passed through since that suffix began, gives the same result:
 * that is what lets snapshots run while writes go on, and replicas skip duplicates.
 *
 * @module
 */

/** Replaces the key's value and deadline (`null`: no deadline; a plain SET clears it). */
export interface SetCommand {
  readonly kind: "set";
  readonly key: string;
  readonly value: string;
  readonly expiresAtMs: number | null;
}

/** Removes the key if present. */
export interface DeleteCommand {
  readonly kind: "delete";
  readonly key: string;
}

/** Gives an existing key an absolute deadline, in unix milliseconds; no effect if the
 * key is absent. */
export interface ExpireAtCommand {
  readonly kind: "expireAt";
  readonly key: string;
  readonly expiresAtMs: number;
}

export type WriteCommand = SetCommand | DeleteCommand | ExpireAtCommand;

/** A command with the sequence id the master gave it. */
export interface SequencedCommand {
  readonly seq: number;
  readonly command: WriteCommand;
}
