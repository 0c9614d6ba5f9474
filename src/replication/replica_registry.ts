/**
 * The master's book of its replicas: who is attached, how (pull, stream or push), the
 * last seq each acknowledged, and the Wait calls blocked on those acknowledgements.
 *
 * A replica's lag is told two ways: in commands (the master's last seq minus the
 * replica's acknowledged seq) and in milliseconds (the age of the oldest command the
 * replica has not acknowledged, from the backlog's commit times; 0 when it has them all).
 *
 * Wait (Redis's WAIT) blocks until N replicas have acknowledged a target seq, the
 * master's last seq when the call came. A replica reached two ways (pulling, and pushed
 * to with --replicas) has two records but counts once: records are counted by the
 * replica process behind them. Waiters are resolved here as acknowledgements
 * arrive; their timeouts belong to the shell, which calls {@linkcode ReplicaRegistry.cancelWait}.
 *
 * A master shutting down waits (bounded, by the shell) until no replica is
 * {@linkcode ReplicaRegistry.behind} its last seq; {@linkcode ReplicaRegistry.onChange}
 * tells it when to look again.
 *
 * Pure: no I/O, no timers; time comes in as `nowMs`.
 *
 * @module
 */

export type ReplicaMode = "pull" | "stream" | "push";

/** A replica as the master tracks it. */
export interface ReplicaRecord {
  readonly id: string;
  /** The replica process behind the link, when it differs from `id` (a push link learns
   * it from the replica's answers). */
  node?: string;
  readonly address: string;
  readonly mode: ReplicaMode;
  /** "fullsync" while its fullSync streams, "online" once streaming commands; for push
   * links "connecting" until the replica is first reached, "online" while it is, "down"
   * while it cannot be reached or pushes fail. */
  state: string;
  /** The last seq it acknowledged (-1: none yet; a stream without acks counts what was
   * sent). */
  ackedSeq: number;
  ackedAtMs: number;
  /** A push link's first seq: it pushes only what was committed after it started, so it
   * has nothing to deliver up to an older seq (and, until a write, no answer to learn
   * where its replica is). Undefined for pulling replicas, which say where they are. */
  readonly firstSeq?: number;
}

/** A replica's figures, as Info shows them. */
export interface ReplicaStatus {
  readonly id: string;
  readonly address: string;
  readonly mode: ReplicaMode;
  readonly state: string;
  readonly ackedSeq: number;
  readonly lagSeqs: number;
  readonly lagMs: number;
}

/** A blocked Wait call. */
export interface Waiter {
  readonly targetSeq: number;
  readonly replicasWanted: number;
  /** Called once, with the number of replicas that acknowledged targetSeq. */
  readonly resolve: (replicas: number) => void;
}

export class ReplicaRegistry {
  #replicas = new Map<string, ReplicaRecord>();
  #waiters = new Set<Waiter>();
  #changeListeners = new Set<() => void>();

  get size(): number {
    return this.#replicas.size;
  }

  get waiterCount(): number {
    return this.#waiters.size;
  }

  /** Registers a replica; one with the same id replaces the old record (a reconnect). */
  add(record: Omit<ReplicaRecord, "ackedAtMs">, nowMs: number): ReplicaRecord {
    const full: ReplicaRecord = { ...record, ackedAtMs: nowMs };
    this.#replicas.set(record.id, full);
    this.#settleWaiters();
    this.#changed();
    return full;
  }

  /** Forgets a replica, unless `record` was already replaced by a newer connection. */
  remove(record: ReplicaRecord): void {
    if (this.#replicas.get(record.id) !== record) return;
    this.#replicas.delete(record.id);
    this.#changed();
  }

  /** Records a replica's new state (a push link's "connecting", "online" or "down"). */
  setState(record: ReplicaRecord, state: string): void {
    if (record.state === state) return;
    record.state = state;
    this.#changed();
  }

  get(id: string): ReplicaRecord | undefined {
    return this.#replicas.get(id);
  }

  /** Records that a replica holds everything up to `seq`. Acknowledgements never move
   * back: a late, reordered one is ignored. */
  ack(record: ReplicaRecord, seq: number, nowMs: number): void {
    if (seq < record.ackedSeq) return;
    const moved = seq > record.ackedSeq;
    record.ackedSeq = seq;
    record.ackedAtMs = nowMs;
    this.#settleWaiters();
    if (moved) this.#changed();
  }

  /** How many attached replicas acknowledged `seq` or later, each process once. */
  countAcked(seq: number): number {
    const nodes = new Set<string>();
    for (const record of this.#replicas.values()) if (record.ackedSeq >= seq) nodes.add(record.node ?? record.id);
    return nodes.size;
  }

  /**
   * The replicas attached that have not acknowledged `seq`, one record per replica
   * process (its most advanced). A process with any record at `seq` or later has it; a
   * push link whose replica cannot be reached ("down") is not counted as attached, since
   * waiting for it would only wait out the bound; nor is one that started after `seq`,
   * since it has nothing to push up to there (a master restarted with --replicas and
   * stopped before a write would otherwise wait out the bound for an answer that never
   * comes).
   */
  behind(seq: number): ReplicaRecord[] {
    const byNode = new Map<string, ReplicaRecord[]>();
    for (const record of this.#replicas.values()) {
      const node = record.node ?? record.id;
      byNode.set(node, [...(byNode.get(node) ?? []), record]);
    }
    const behind: ReplicaRecord[] = [];
    for (const records of byNode.values()) {
      if (records.some((record) => record.ackedSeq >= seq)) continue;
      const reachable = records.filter((record) =>
        !(record.mode === "push" && (record.state === "down" || seq < (record.firstSeq ?? 0)))
      );
      if (reachable.length === 0) continue;
      behind.push(reachable.reduce((best, record) => record.ackedSeq > best.ackedSeq ? record : best));
    }
    return behind;
  }

  /** Calls `listener` after every change that may move a replica out of
   * {@linkcode ReplicaRegistry.behind}: one attached or gone, an acknowledgement, a state.
   * Returns the function that unregisters it. */
  onChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /** Blocks a Wait call; resolves it at once when enough replicas already acknowledged
   * its target. Returns whether it is still waiting. */
  addWaiter(waiter: Waiter): boolean {
    const count = this.countAcked(waiter.targetSeq);
    if (count >= waiter.replicasWanted) {
      waiter.resolve(count);
      return false;
    }
    this.#waiters.add(waiter);
    return true;
  }

  /** Ends a Wait call that timed out, resolving it with the count reached so far. */
  cancelWait(waiter: Waiter): void {
    if (!this.#waiters.delete(waiter)) return;
    waiter.resolve(this.countAcked(waiter.targetSeq));
  }

  /** Ends every Wait call with the count reached so far (the node stops being a master). */
  cancelAllWaits(): void {
    for (const waiter of [...this.#waiters]) this.cancelWait(waiter);
  }

  /**
   * Every replica's figures. `masterSeq` is the master's last seq; `committedAtMs(seq)`
   * says when a command was committed, if the backlog still holds it, and
   * `oldestCommittedAtMs` when its oldest command was (a lower bound for older ones).
   */
  status(
    masterSeq: number,
    nowMs: number,
    committedAtMs: (seq: number) => number | undefined,
    oldestCommittedAtMs: number | undefined,
  ): ReplicaStatus[] {
    return [...this.#replicas.values()].map((record) => {
      // ackedSeq -1 means "nothing yet", as 0 does (seqs start at 1): a master at seq 0 has
      // nothing a replica could lack.
      const lagSeqs = Math.max(0, masterSeq - Math.max(record.ackedSeq, 0));
      let lagMs = 0;
      if (lagSeqs > 0) {
        const since = committedAtMs(record.ackedSeq + 1) ?? oldestCommittedAtMs ?? record.ackedAtMs;
        lagMs = Math.max(0, nowMs - since);
      }
      return {
        id: record.id,
        address: record.address,
        mode: record.mode,
        state: record.state,
        ackedSeq: record.ackedSeq,
        lagSeqs,
        lagMs,
      };
    });
  }

  #changed(): void {
    for (const listener of [...this.#changeListeners]) listener();
  }

  #settleWaiters(): void {
    if (this.#waiters.size === 0) return;
    for (const waiter of [...this.#waiters]) {
      const count = this.countAcked(waiter.targetSeq);
      if (count >= waiter.replicasWanted) {
        this.#waiters.delete(waiter);
        waiter.resolve(count);
      }
    }
  }
}
