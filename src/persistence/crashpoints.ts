/**
 * Crash points: named steps of the persistence code where a test can make the process
 * die abruptly, to prove that a crash exactly there loses nothing acknowledged.
 *
 * The persistence code calls a {@linkcode CrashHook} with the step's name at each point.
 * In a node the hook comes from {@linkcode crashHookFromSpec} applied to the
 * KVSTORE_CRASHPOINT environment variable, `NAME` (crash the first time NAME is reached)
 * or `NAME:N` (the N-th time), and kills the process with SIGKILL: no handler, no
 * flush, no graceful anything. Unit tests pass a hook that throws instead.
 *
 * | point                    | where                                                          |
 * | ------------------------ | -------------------------------------------------------------- |
 * | after-append-before-sync | a batch is in the log file (the OS has it), not yet fsynced      |
 * | after-append-before-ack  | a batch is durable per policy; no writer has been answered      |
 * | mid-snapshot-write       | the first chunk of kvstore.rdb.tmp is written                   |
 * | before-snapshot-rename   | kvstore.rdb.tmp is complete and fsynced, not yet renamed        |
 * | after-snapshot-rename    | kvstore.rdb is renamed into place; the directory is not fsynced |
 * | before-log-cut           | the snapshot is durable; the log still holds everything         |
 * | mid-log-cut              | the cut log kvstore.aof.tmp is complete, not yet renamed        |
 * | after-log-cut            | the cut log replaced kvstore.aof; appends not yet switched to it |
 * | mid-replace              | replaceWith renamed the new snapshot, not yet the new log       |
 *
 * @module
 */

export const CRASH_POINTS = [
  "after-append-before-sync",
  "after-append-before-ack",
  "mid-snapshot-write",
  "before-snapshot-rename",
  "after-snapshot-rename",
  "before-log-cut",
  "mid-log-cut",
  "after-log-cut",
  "mid-replace",
] as const;

export type CrashPoint = typeof CRASH_POINTS[number];

/** Called at every crash point; returns normally unless a crash is wanted there. */
export type CrashHook = (point: CrashPoint) => void;

/** A hook that never crashes. */
export const NO_CRASH: CrashHook = () => {};

/** Parses `NAME` or `NAME:N`; throws an Error naming the choices when it is neither. */
export function parseCrashSpec(spec: string): { point: CrashPoint; hit: number } {
  const match = /^([a-z-]+)(?::([0-9]+))?$/.exec(spec.trim());
  const point = match?.[1] as CrashPoint | undefined;
  const hit = match?.[2] === undefined ? 1 : Number(match[2]);
  if (point === undefined || !CRASH_POINTS.includes(point) || hit < 1) {
    throw new Error(
      `Invalid KVSTORE_CRASHPOINT ${JSON.stringify(spec)}: expected NAME or NAME:N with N >= 1, ` +
        `NAME one of ${CRASH_POINTS.join(", ")}`,
    );
  }
  return { point, hit };
}

/** A hook that calls `die` the `hit`-th time `point` is reached. */
export function crashHookFromSpec(spec: string, die: (point: CrashPoint) => void): CrashHook {
  const { point, hit } = parseCrashSpec(spec);
  let seen = 0;
  return (reached) => {
    if (reached === point && ++seen === hit) die(reached);
  };
}
