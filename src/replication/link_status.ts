/**
 * A replica's link to its master: its state, what an operator is told when it changes,
 * and how long to wait before the next attempt.
 *
 *   connecting --handshake--> syncing (fullSync) --> up
 *        ^            \-----> up (partialSync)       |
 *        |                                           v
 *        +--------------- down (backoff) <----- stream ends
 *
 * A master that does not serve Sync (the C++ store) puts the link in "push-only": the
 * replica waits for ReplicateCommand pushes, and keeps asking now and then in case the
 * master is replaced. While the master stays unreachable the link cycles between
 * connecting and down; that is one outage, logged once when it starts and once when it
 * ends, not at every attempt (each new reason for the failure is logged once too).
 *
 * Pure: no I/O, no timers; time comes in as `nowMs`.
 *
 * @module
 */

import { LINK_OUTAGE_REASONS_LOGGED_MAX } from "../config/limits.ts";

export type LinkState = "connecting" | "syncing" | "up" | "down" | "push-only" | "stopped";

/** A line for the log: level and message. */
export interface LinkEvent {
  readonly level: "info" | "warn";
  readonly message: string;
}

export interface BackoffLimits {
  readonly delayMsMin: number;
  readonly delayMsMax: number;
}

export class LinkStatus {
  #state: LinkState = "connecting";
  /** When the current outage began (null while up). */
  #downSinceMs: number | null;
  #lastError = "";
  /** The reasons this outage has logged: a master that fails in turns (refused, reset,
   * closed) would otherwise log each switch. At most LINK_OUTAGE_REASONS_LOGGED_MAX. */
  #loggedErrors = new Set<string>();
  #failures = 0;
  #firstSyncDone = false;
  #outageLogged = false;
  /** The fullSync reason last logged during this outage, so a retry is not logged again. */
  #loggedSyncReason = "";
  #limits: BackoffLimits;

  constructor(limits: BackoffLimits, nowMs: number) {
    this.#limits = limits;
    this.#downSinceMs = nowMs;
  }

  get state(): LinkState {
    return this.#state;
  }

  /** Whether a sync with the master completed since this replica started following it. */
  get firstSyncDone(): boolean {
    return this.#firstSyncDone;
  }

  /** Why the link last failed ("" if it has not). */
  get lastError(): string {
    return this.#lastError;
  }

  /** How long the link has been down at `nowMs`, in ms (0 while up). */
  downForMs(nowMs: number): number {
    return this.#downSinceMs === null ? 0 : Math.max(0, nowMs - this.#downSinceMs);
  }

  /** An attempt to reach the master begins. Not news: returns nothing to log. */
  connecting(): LinkEvent | null {
    if (this.#state !== "push-only") this.#state = "connecting";
    return null;
  }

  /** The master answered with a fullSync, which is now loading. Returns nothing to log
   * when it retries, for the same reason, one that failed during this outage. */
  syncing(reason: string): LinkEvent | null {
    this.#state = "syncing";
    if (this.#outageLogged && reason === this.#loggedSyncReason) return null;
    this.#loggedSyncReason = reason;
    return { level: "info", message: `Full sync from master started: ${reason}` };
  }

  /** The link is up: a partialSync was accepted or a fullSync finished. */
  up(how: string, nowMs: number): LinkEvent {
    const wasDownMs = this.downForMs(nowMs);
    this.#state = "up";
    this.#downSinceMs = null;
    this.#failures = 0;
    this.#firstSyncDone = true;
    this.#outageLogged = false;
    this.#loggedErrors.clear();
    this.#loggedSyncReason = "";
    return { level: "info", message: `Link to master up (${how}) after ${wasDownMs} ms` };
  }

  /** The master does not serve Sync; commands can only arrive by push. Logged once. */
  pushOnly(nowMs: number): LinkEvent | null {
    const news = this.#state !== "push-only";
    this.#state = "push-only";
    this.#downSinceMs ??= nowMs;
    this.#failures = Math.max(this.#failures, 1);
    if (!news) return null;
    return {
      level: "warn",
      message: "The master does not serve Sync (an older kvstore or the C++ store): waiting for pushed commands",
    };
  }

  /** An attempt failed or the stream ended with `error`. Returns a line to log when this
   * starts an outage or gives a new reason for it. */
  down(error: string, nowMs: number): LinkEvent | null {
    this.#lastError = error;
    this.#failures++;
    if (this.#state === "push-only") return null;
    // A fullSync that failed is not a link that was up: retried, it is one outage.
    const wasUp = this.#state === "up" || (this.#state === "syncing" && !this.#outageLogged);
    this.#state = "down";
    this.#downSinceMs ??= nowMs;
    if (wasUp || !this.#outageLogged) {
      this.#outageLogged = true;
      this.#loggedErrors.clear();
      this.#loggedErrors.add(error);
      return { level: "warn", message: `Link to master down: ${error}` };
    }
    if (!this.#loggedErrors.has(error) && this.#loggedErrors.size < LINK_OUTAGE_REASONS_LOGGED_MAX) {
      this.#loggedErrors.add(error);
      return { level: "warn", message: `Link to master still down: ${error}` };
    }
    return null;
  }

  /** The replica stopped following (promotion, a new master, shutdown). */
  stopped(): void {
    this.#state = "stopped";
  }

  /** How long to wait before the next attempt: doubling from the minimum with each
   * consecutive failure, up to the maximum. */
  nextDelayMs(): number {
    const exponent = Math.min(Math.max(this.#failures - 1, 0), 20);
    return Math.min(this.#limits.delayMsMax, this.#limits.delayMsMin * 2 ** exponent);
  }
}
