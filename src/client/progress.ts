/**
 * Progress of a long command (import, export) on standard error: a bar redrawn in place
 * on a terminal, plain lines every few seconds otherwise (a log file, CI), so neither a
 * person nor a log is flooded.
 *
 * ```
 * import [##############...............]  47%  470000/1000000 keys  98123 keys/s
 * kvstore import: 470000 keys, 47%, 98123 keys/s
 * ```
 *
 * {@linkcode formatProgress} is pure; {@linkcode Progress} decides when to draw, from
 * the calls it gets (no timer of its own: a stalled command draws nothing new).
 *
 * @module
 */

import { PROGRESS_BAR_REDRAW_MS, PROGRESS_LINE_INTERVAL_MS } from "../config/limits.ts";

export interface ProgressState {
  /** Items done (keys). */
  readonly done: number;
  /** Fraction of the work done, 0-1, when known (bytes read of a file's size, keys of
   * the key count). */
  readonly fraction?: number;
  /** Items per second so far. */
  readonly rate: number;
}

const BAR_WIDTH = 30;

/** The terminal form: a bar when the fraction is known, a count otherwise. */
export function formatProgressBar(label: string, unit: string, state: ProgressState, total?: number): string {
  const count = total === undefined ? `${state.done} ${unit}` : `${state.done}/${total} ${unit}`;
  const rate = `${Math.round(state.rate)} ${unit}/s`;
  if (state.fraction === undefined) return `${label} ${count}  ${rate}`;
  const fraction = Math.min(1, Math.max(0, state.fraction));
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = "#".repeat(filled) + ".".repeat(BAR_WIDTH - filled);
  return `${label} [${bar}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${count}  ${rate}`;
}

/** The plain form, one line for logs. */
export function formatProgressLine(label: string, unit: string, state: ProgressState): string {
  const percent = state.fraction === undefined ? "" : `, ${Math.floor(Math.min(1, state.fraction) * 100)}%`;
  return `kvstore ${label}: ${state.done} ${unit}${percent}, ${Math.round(state.rate)} ${unit}/s`;
}

/** Draws progress on stderr as the command reports it. */
export class Progress {
  readonly #write: (text: string) => void;
  readonly #terminal: boolean;
  readonly #label: string;
  readonly #unit: string;
  readonly #clock: () => number;
  readonly #startedMs: number;
  #lastDrawMs: number;
  #drawn = false;
  total: number | undefined;

  constructor(
    write: (text: string) => void,
    options: { terminal: boolean; label: string; unit: string; total?: number; clock?: () => number },
  ) {
    this.#write = write;
    this.#terminal = options.terminal;
    this.#label = options.label;
    this.#unit = options.unit;
    this.total = options.total;
    this.#clock = options.clock ?? (() => performance.now());
    this.#startedMs = this.#clock();
    this.#lastDrawMs = this.#startedMs;
  }

  /** Milliseconds since the start. */
  get elapsedMs(): number {
    return this.#clock() - this.#startedMs;
  }

  /** Reports `done` items (and the fraction, when known); draws when it is time. */
  update(done: number, fraction?: number): void {
    const nowMs = this.#clock();
    const interval = this.#terminal ? PROGRESS_BAR_REDRAW_MS : PROGRESS_LINE_INTERVAL_MS;
    if (nowMs - this.#lastDrawMs < interval) return;
    this.#lastDrawMs = nowMs;
    this.#draw(done, fraction, nowMs);
  }

  /** Clears the bar (on a terminal) before the summary is printed. */
  finish(): void {
    if (this.#terminal && this.#drawn) this.#write("\r\x1b[2K");
  }

  #draw(done: number, fraction: number | undefined, nowMs: number): void {
    const seconds = Math.max((nowMs - this.#startedMs) / 1000, 0.001);
    const fromTotal = this.total !== undefined && this.total > 0 ? done / this.total : undefined;
    const state = { done, fraction: fraction ?? fromTotal, rate: done / seconds };
    if (this.#terminal) {
      this.#write(`\r\x1b[2K${formatProgressBar(this.#label, this.#unit, state, this.total)}`);
    } else {
      this.#write(formatProgressLine(this.#label, this.#unit, state) + "\n");
    }
    this.#drawn = true;
  }
}
