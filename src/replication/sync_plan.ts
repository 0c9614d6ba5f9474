/**
 * The master's decision when a replica opens a Sync stream: partialSync or fullSync.
 *
 * A replica says which history it holds (replid) and the last seq it applied. The master
 * answers with a partialSync, the commands after that seq from its backlog, when
 *
 *   1. the replica's history is the master's own, or the one the master continued from
 *      (a promoted replica, or a master after a restart, begins a new history and
 *      remembers the previous one and where it ended, like Redis's PSYNC2), or the
 *      replica's own history continues one of those two (a master that restarted or was
 *      promoted, and is now made a replica: it says which history it continued and
 *      where), in which case the histories are shared up to where they parted, and
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
  /** The history the replica's own continues, and where it left it (null: none; the
   * replica was a master that restarted or was promoted). */
  readonly previousReplid?: string | null;
  readonly previousLastSeq?: number;
}

export type SyncPlan =
  | { readonly kind: "partialSync"; readonly afterSeq: number }
  | { readonly kind: "fullSync"; readonly reason: string; readonly dropped: number };

/** Decides how a replica at `replica` catches up with a master at `master`. */
export function planSync(master: MasterPosition, replica: ReplicaPosition): SyncPlan {
  let historyEndSeq = sharedUpTo(master, replica.replid);
  let parted = false;
  if (historyEndSeq === null && replica.previousReplid) {
    // The replica's history left one the master holds; they are the same up to there.
    const previousEndSeq = sharedUpTo(master, replica.previousReplid);
    if (previousEndSeq !== null) {
      historyEndSeq = Math.min(previousEndSeq, replica.previousLastSeq ?? 0);
      parted = true;
    }
  }
  if (historyEndSeq === null) {
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
      reason: parted
        ? `the replica's history ${shortReplid(replica.replid)} left the master's at seq ${historyEndSeq}, and ` +
          `it holds seq ${replica.seq}`
        : `the replica is ahead of the master's history at seq ${historyEndSeq} (it holds seq ${replica.seq})`,
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

/** How far history `replid` is the master's: up to its last seq for its own, up to where
 * it left off for the one it continued; null for any other. */
function sharedUpTo(master: MasterPosition, replid: string): number | null {
  if (replid === master.replid) return master.seq;
  if (master.previousReplid !== null && replid === master.previousReplid) return master.previousLastSeq;
  return null;
}

/** The first characters of a replid, enough to tell histories apart in a log line. */
export function shortReplid(replid: string): string {
  return replid.length > 12 ? replid.slice(0, 12) : replid;
}
