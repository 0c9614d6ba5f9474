/**
 * The master's decision when a replica opens a Sync stream: partialSync or fullSync.
 *
 * A replica says which history it holds (replid) and the last seq it applied. The master
 * answers with a partialSync, the commands after that seq from its backlog, when
 *
 *   1. the replica's history is the master's own, or the one the master continued from
 *      (a promoted replica, or a master after a restart, begins a new history and
 *      remembers the previous one and where it ended, like Redis's PSYNC2), and
 *   2. the replica is not ahead of that history: it holds no command the master does not
 *      (a replica of a crashed master may have received writes its successor never saw),
 *   3. the backlog still holds the command after the replica's seq.
 *
 * Otherwise the replica needs a fullSync: the whole dataset, then the commands after it.
 * When the reason is a replica ahead of the master's history, the plan says how many
 * commands it holds beyond it, so both sides can log what the resync discards.
 *
 * Pure: the decision is a function of the two positions.
 *
 * @module
 */

/** What the master knows of its own history when a replica connects. */
export interface MasterPosition {
  readonly replid: string;
  /** The master's last committed seq. */
  readonly seq: number;
  /** The history this one continued from, and its last seq (null: none). */
  readonly previousReplid: string | null;
  readonly previousLastSeq: number;
  /** The oldest seq the backlog holds (seq + 1 when it is empty). */
  readonly backlogFirstSeq: number;
}

/** What a replica says it holds. */
export interface ReplicaPosition {
  readonly replid: string;
  readonly seq: number;
}

export type SyncPlan =
  | { readonly kind: "partialSync"; readonly afterSeq: number }
  | { readonly kind: "fullSync"; readonly reason: string; readonly dropped: number };

/** Decides how a replica at `replica` catches up with a master at `master`. */
export function planSync(master: MasterPosition, replica: ReplicaPosition): SyncPlan {
  let historyEndSeq: number;
  if (replica.replid === master.replid) {
    historyEndSeq = master.seq;
  } else if (master.previousReplid !== null && replica.replid === master.previousReplid) {
    historyEndSeq = master.previousLastSeq;
  } else {
    return {
      kind: "fullSync",
      reason: replica.replid === ""
        ? "the replica holds no history"
        : `the replica holds history ${shortReplid(replica.replid)}, which this master does not continue`,
      dropped: 0,
    };
  }
  if (replica.seq > historyEndSeq) {
    return {
      kind: "fullSync",
      reason: `the replica is ahead of the master's history at seq ${historyEndSeq} (it holds seq ${replica.seq})`,
      dropped: replica.seq - historyEndSeq,
    };
  }
  if (replica.seq < master.backlogFirstSeq - 1) {
    return {
      kind: "fullSync",
      reason: `the backlog starts at seq ${master.backlogFirstSeq}, after the replica's seq ${replica.seq} + 1`,
      dropped: 0,
    };
  }
  return { kind: "partialSync", afterSeq: replica.seq };
}

/** The first characters of a replid, enough to tell histories apart in a log line. */
export function shortReplid(replid: string): string {
  return replid.length > 12 ? replid.slice(0, 12) : replid;
}
