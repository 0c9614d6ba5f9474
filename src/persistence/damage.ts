/**
 * The error that stops start-up when a data file is damaged, and the message it carries.
 *
 * A damaged file is never loaded in part: the node refuses to start, and the message
 * names the file, the byte offset, what is wrong there, and the offline command that
 * repairs it by cutting the damage off (`kvstore repair --data-dir DIR`), so the
 * operator decides what is dropped, with the facts in front of them.
 *
 * @module
 */

import { KvError } from "../errors.ts";

export type DataFile = "log" | "snapshot";

export class DamagedFileError extends KvError {
  readonly file: DataFile;
  readonly path: string;
  /** Where the damage is. */
  readonly offset: number;
  /** What is wrong, in a few words. */
  readonly detail: string;
  /** For the log: where a repair cuts it (the start of the batch holding the damage). */
  readonly cutOffset: number;

  constructor(
    file: DataFile,
    path: string,
    offset: number,
    detail: string,
    options: { cutOffset?: number; dataDir: string },
  ) {
    const what = file === "log" ? "the records from there on" : "the snapshot's entries from there on";
    super(
      "FAILED_PRECONDITION",
      `recovery: Cannot load ${JSON.stringify(path)} at offset ${offset}: ${detail}. Nothing was loaded. ` +
        `Restore the file from a backup or a replica, or keep what comes before the damage and drop ${what} ` +
        `by stopping every node on this directory and running: kvstore repair --data-dir ${
          shellQuote(options.dataDir)
        }`,
    );
    this.name = "DamagedFileError";
    this.file = file;
    this.path = path;
    this.offset = offset;
    this.detail = detail;
    this.cutOffset = options.cutOffset ?? offset;
  }
}

/** Files that exist but do not belong together (a snapshot and a log of different
 * lineages, a log that continues a missing snapshot). Repair resolves it by keeping
 * the snapshot and setting the log aside, or by standing in an empty snapshot. */
export class MismatchedFilesError extends KvError {
  readonly problem: "log-not-of-snapshot" | "log-ends-early" | "snapshot-missing";

  constructor(problem: MismatchedFilesError["problem"], detail: string, dataDir: string) {
    super(
      "FAILED_PRECONDITION",
      `recovery: Cannot load the data in ${JSON.stringify(dataDir)}: ${detail}. Nothing was loaded. ` +
        `Restore the files from a backup or a replica, or keep what can be kept by stopping every node on ` +
        `this directory and running: kvstore repair --data-dir ${shellQuote(dataDir)}`,
    );
    this.name = "MismatchedFilesError";
    this.problem = problem;
  }
}

/** `text` as one shell word, quoted only when it needs to be. */
export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(text) ? text : `'${text.replaceAll("'", `'"'"'`)}'`;
}
