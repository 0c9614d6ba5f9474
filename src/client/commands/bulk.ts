/**
 * `kvstore export FILE` and `kvstore import FILE`: the dataset as JSON lines (see
 * bulk.ts for the format), moved in batches for speed: export pages through Scan, import
 * sends MSet batches with several in flight. `-` is standard output or input.
 *
 * Export writes `FILE.tmp` and renames it over FILE when complete, so an interrupted
 * export never leaves a half file where a whole one was expected. It sees the keys as
 * Scan does: every key present for the whole export is written exactly once; keys
 * written meanwhile may or may not be.
 *
 * Import applies the file as if line by line: a key on several lines ends with its last
 * line's value, because a batch holding a key that a batch in flight writes waits for
 * that batch (calls in flight may be applied in any order); other batches do not wait.
 *
 * Import stops at the first line it cannot read, after sending every entry before it,
 * so a fixed file can simply be imported again (writes are idempotent). A batch the
 * server refuses stops the import too: nothing more is sent, and the message names the
 * batch's lines, the server's reason, and which lines were written.
 *
 * Both show progress on standard error: a bar on a terminal, a line every few seconds
 * otherwise.
 *
 * @module
 */

import { plural } from "../../errors.ts";
import {
  BATCH_KEYS_MAX,
  EXPORT_PAGE_KEYS_DEFAULT,
  IMPORT_BATCH_BYTES_MAX,
  IMPORT_BATCH_ENTRIES_DEFAULT,
  IMPORT_LINE_CHARS_MAX,
  IMPORT_PIPELINE_DEFAULT,
  IMPORT_PIPELINE_MAX,
  SCAN_PAGE_KEYS_MAX,
} from "../../config/limits.ts";
import { UsageError } from "../../config/usage_error.ts";
import { parseInteger } from "../../config/values.ts";
import { type Batch, Batcher, BulkLineError, formatBulkLine, KeysInFlight, parseBulkLine } from "../bulk.ts";
import { describeFailure } from "../cli.ts";
import { type ClientCommand, type CommandContext, EXIT_INTERRUPTED, EXIT_OK } from "../command.ts";
import { AtomicFile } from "../files.ts";
import { LineTooLongError, readLines } from "../lines.ts";
import { Progress } from "../progress.ts";

/** Text is written out in chunks of about this many characters. */
const WRITE_CHUNK_CHARS = 256 * 1024;

export const exportCommand: ClientCommand = {
  name: "export",
  args: "FILE",
  summary: "Write every key (or those with --prefix) to FILE as JSON lines {key, value, ttl}; - for stdout.",
  details: 'Each line is {"key":"k","value":"v","ttl":SECONDS|null}; ttl is the time left when read. ' +
    "FILE is replaced only when the export completes (written to FILE.tmp, then renamed).",
  arity: [1, 1],
  flags: [
    { name: "prefix", type: "string", valueName: "PREFIX", help: "Only keys starting with PREFIX" },
    {
      name: "page-size",
      type: "string",
      valueName: "N",
      help: `Keys per Scan call (1-${SCAN_PAGE_KEYS_MAX}, default ${EXPORT_PAGE_KEYS_DEFAULT})`,
    },
  ],
  async run(context) {
    const [path] = context.positionals;
    const pageSize = parseInteger(
      (context.flags["page-size"] as string | undefined) ?? String(EXPORT_PAGE_KEYS_DEFAULT),
      "--page-size",
      1,
      SCAN_PAGE_KEYS_MAX,
    );
    const prefix = (context.flags.prefix as string | undefined) ?? "";
    const client = context.client();
    // Asking first tells an unreachable server apart before any file is touched, and
    // gives the progress bar its total (all keys: an upper bound with --prefix).
    const keysTotal = Number((await client.info()).keys);
    const toStdout = path === "-";
    const file = toStdout ? null : await AtomicFile.create(path);
    const progress = new Progress(context.io.stderr, {
      terminal: Deno.stderr.isTerminal(),
      label: "export",
      unit: "keys",
      total: prefix === "" ? keysTotal : undefined,
    });
    let exported = 0;
    let expired = 0;
    let chunk = "";
    const flush = async () => {
      if (chunk === "") return;
      if (file === null) context.io.stdout(chunk);
      else await file.write(chunk);
      chunk = "";
    };
    try {
      for await (const entry of client.scanAll({ prefix, pageSize, includeValues: true })) {
        // Interrupted (Ctrl-C in the shell): FILE is left as it was.
        if (context.signal.aborted) throw new Error("export: Interrupted");
        const line = formatBulkLine(entry, Date.now());
        if (line === undefined) {
          expired++;
          continue;
        }
        chunk += line;
        exported++;
        if (chunk.length >= WRITE_CHUNK_CHARS) await flush();
        progress.update(exported);
      }
      await flush();
      await file?.commit();
    } catch (error) {
      await file?.abort();
      progress.finish();
      throw error;
    }
    progress.finish();
    const seconds = progress.elapsedMs / 1000;
    const summary = context.json
      ? JSON.stringify({ exported, expired, seconds: round3(seconds), file: path })
      : `Exported ${plural(exported, "key")} to ${toStdout ? "standard output" : path} in ${seconds.toFixed(1)} s` +
        ` (${Math.round(exported / Math.max(seconds, 0.001))} keys/s)`;
    // With the data on stdout, the summary goes to stderr so the data stays clean.
    if (toStdout) context.warn(summary);
    else context.print(summary);
    return EXIT_OK;
  },
};

export const importCommand: ClientCommand = {
  name: "import",
  args: "FILE",
  summary: "Write the entries of FILE (JSON lines {key, value, ttl}, as export writes them); - for stdin.",
  details: "Entries go in MSet batches, several in flight; a key on several lines ends with its last line's " +
    "value. A line that cannot be read stops the import after everything before it was written; its number is " +
    "in the message. A batch the server refuses stops it too, saying which lines were written. Entries whose " +
    "ttl is 0 or less have expired and are skipped. --dry-run checks the file without writing.",
  arity: [1, 1],
  flags: [
    {
      name: "batch-size",
      type: "string",
      valueName: "N",
      help: `Entries per MSet call (1-${BATCH_KEYS_MAX}, default ${IMPORT_BATCH_ENTRIES_DEFAULT})`,
    },
    {
      name: "pipeline",
      type: "string",
      valueName: "N",
      help: `MSet calls in flight (1-${IMPORT_PIPELINE_MAX}, default ${IMPORT_PIPELINE_DEFAULT})`,
    },
    { name: "dry-run", type: "boolean", help: "Check every line, write nothing" },
  ],
  async run(context) {
    const [path] = context.positionals;
    const batchSize = parseInteger(
      (context.flags["batch-size"] as string | undefined) ?? String(IMPORT_BATCH_ENTRIES_DEFAULT),
      "--batch-size",
      1,
      BATCH_KEYS_MAX,
    );
    const pipeline = parseInteger(
      (context.flags.pipeline as string | undefined) ?? String(IMPORT_PIPELINE_DEFAULT),
      "--pipeline",
      1,
      IMPORT_PIPELINE_MAX,
    );
    const dryRun = context.flags["dry-run"] === true;
    if (path === "-" && context.inShell) {
      throw new UsageError(
        "Cannot import standard input inside the shell: the shell reads its commands from it; name a file",
      );
    }
    const input = await openInput(path);
    // A server that is down is reported before reading anything, even for an empty file.
    if (!dryRun) {
      try {
        await context.client().info();
      } catch (error) {
        input.close();
        throw error;
      }
    }
    const job = new ImportJob(context, { pipeline, dryRun, name: input.name });
    const progress = new Progress(context.io.stderr, {
      terminal: Deno.stderr.isTerminal(),
      label: "import",
      unit: "keys",
    });
    const batcher = new Batcher(batchSize, IMPORT_BATCH_BYTES_MAX);
    let lineNumber = 0;
    try {
      for await (const line of readLines(input.stream, IMPORT_LINE_CHARS_MAX)) {
        lineNumber++;
        if (job.failed || context.signal.aborted) break;
        const parsed = parseBulkLine(line, lineNumber);
        if (parsed.kind === "expired") job.expired++;
        if (parsed.kind !== "entry") continue;
        const full = batcher.add(parsed.entry, lineNumber);
        if (full !== undefined) await job.dispatch(full);
        progress.update(job.imported, input.sizeBytes ? input.bytesRead() / input.sizeBytes : undefined);
      }
    } catch (error) {
      if (!(error instanceof BulkLineError || error instanceof LineTooLongError)) {
        await job.settle();
        progress.finish();
        throw error;
      }
      // Everything before the bad line is written, so fixing it and importing again
      // picks up cleanly.
      const last = batcher.take();
      if (last !== undefined) await job.dispatch(last);
      await job.settle();
      progress.finish();
      job.throwIfFailed();
      const done = dryRun
        ? `${plural(job.imported, "entry", "entries")} before it ${job.imported === 1 ? "is" : "are"} valid`
        : `${plural(job.imported, "key")} before it ${job.imported === 1 ? "was" : "were"} imported`;
      throw new UsageError(`Cannot import ${input.name}: ${error.message}; ${done}`);
    } finally {
      input.close();
    }
    if (context.signal.aborted) {
      // Interrupted (Ctrl-C in the shell): send nothing more; what was sent is written,
      // and importing the file again writes the same values.
      await job.settle();
      progress.finish();
      return EXIT_INTERRUPTED;
    }
    const last = batcher.take();
    if (last !== undefined) await job.dispatch(last);
    await job.settle();
    progress.finish();
    job.throwIfFailed();

    const seconds = progress.elapsedMs / 1000;
    if (context.json) {
      context.print({
        imported: job.imported,
        expired: job.expired,
        lines: lineNumber,
        seconds: round3(seconds),
        dryRun,
      });
    } else {
      const skipped = job.expired > 0 ? `; skipped ${job.expired} already expired` : "";
      context.print(
        dryRun
          ? `Checked ${input.name}: ${plural(job.imported, "entry", "entries")} would be imported${skipped}`
          : `Imported ${plural(job.imported, "key")} from ${input.name} in ${seconds.toFixed(1)} s` +
            ` (${Math.round(job.imported / Math.max(seconds, 0.001))} keys/s)${skipped}`,
      );
    }
    return EXIT_OK;
  },
};

/**
 * The MSet calls of one import: at most `pipeline` in flight, and none sent while an
 * earlier one in flight writes one of its keys (so the file's later line wins). The
 * first refusal stops it: nothing more is sent, and the calls already in flight are
 * waited for, so the import can say exactly which lines were written.
 */
class ImportJob {
  imported = 0;
  expired = 0;
  #context: CommandContext;
  #options: { pipeline: number; dryRun: boolean; name: string };
  #inFlight = new Set<Promise<void>>();
  #keysInFlight = new KeysInFlight<Promise<void>>();
  /** The refused batch with the lowest lines, and why. */
  #failed: { batch: Batch; error: unknown } | undefined;
  /** The last line of the furthest batch written. */
  #lastWrittenLine = 0;

  constructor(context: CommandContext, options: { pipeline: number; dryRun: boolean; name: string }) {
    this.#context = context;
    this.#options = options;
  }

  get failed(): boolean {
    return this.#failed !== undefined;
  }

  /** Sends a batch, waiting first while `pipeline` calls are in flight and for the calls
   * in flight that write one of its keys; sends nothing once a batch was refused. */
  async dispatch(batch: Batch): Promise<void> {
    if (this.#options.dryRun) {
      this.imported += batch.entries.length;
      return;
    }
    while (this.#inFlight.size >= this.#options.pipeline) await Promise.race(this.#inFlight);
    // Calls are dispatched one at a time, so nothing new goes in flight while this one
    // waits: once its blockers are done, no call in flight holds one of its keys.
    const blockers = this.#keysInFlight.blockers(batch.entries);
    if (blockers.size > 0) await Promise.all(blockers);
    if (this.failed) return;
    const call: Promise<void> = this.#send(batch).finally(() => {
      this.#inFlight.delete(call);
      this.#keysInFlight.remove(batch.entries, call);
    });
    this.#inFlight.add(call);
    this.#keysInFlight.add(batch.entries, call);
  }

  /** Waits for every call in flight. */
  async settle(): Promise<void> {
    await Promise.all(this.#inFlight);
  }

  /** After settle: throws when a batch was refused, naming its lines, the server's
   * reason, and what was written. Every line before the refused batch was (a lower
   * batch refused would be the one named); batches sent after it, while it was in
   * flight, may have been written too. */
  throwIfFailed(): void {
    if (this.#failed === undefined) return;
    const { batch, error } = this.#failed;
    const lines = batch.firstLine === batch.lastLine
      ? `line ${batch.firstLine}`
      : `lines ${batch.firstLine}-${batch.lastLine}`;
    const before = batch.firstLine === 1
      ? "nothing before it was imported"
      : batch.firstLine === 2
      ? "line 1 was imported"
      : `lines 1-${batch.firstLine - 1} were imported`;
    const after = this.#lastWrittenLine > batch.lastLine
      ? `, and some lines after ${batch.lastLine} that were already sent (${plural(this.imported, "key")} in all)`
      : ` (${plural(this.imported, "key")}), nothing after line ${batch.lastLine} was`;
    throw new Error(
      `Cannot import ${lines} of ${this.#options.name}: ` +
        `${describeFailure(error, this.#context.endpoint, this.#context.timeoutMs)}; ` +
        `the import stopped there: ${before}${after}`,
    );
  }

  async #send(batch: Batch): Promise<void> {
    try {
      await this.#context.client().mset(batch.entries);
      this.imported += batch.entries.length;
      this.#lastWrittenLine = Math.max(this.#lastWrittenLine, batch.lastLine);
    } catch (error) {
      if (this.#failed === undefined || batch.firstLine < this.#failed.batch.firstLine) this.#failed = { batch, error };
    }
  }
}

interface Input {
  readonly name: string;
  readonly stream: ReadableStream<Uint8Array>;
  readonly sizeBytes: number | undefined;
  bytesRead(): number;
  close(): void;
}

/** Opens FILE, or standard input for "-", counting the bytes read for the progress bar. */
async function openInput(path: string): Promise<Input> {
  let bytes = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      bytes += chunk.length;
      controller.enqueue(chunk);
    },
  });
  if (path === "-") {
    return {
      name: "standard input",
      stream: Deno.stdin.readable.pipeThrough(counter),
      sizeBytes: undefined,
      bytesRead: () => bytes,
      close: () => {},
    };
  }
  let file: Deno.FsFile;
  let sizeBytes: number;
  try {
    file = await Deno.open(path, { read: true });
    const info = await file.stat();
    if (info.isDirectory) throw new Error("it is a directory");
    sizeBytes = info.size;
  } catch (error) {
    throw new UsageError(`Cannot open ${JSON.stringify(path)}: ${fileErrorDetail(error)}`);
  }
  let closed = false;
  return {
    name: path,
    stream: file.readable.pipeThrough(counter),
    sizeBytes,
    bytesRead: () => bytes,
    close: () => {
      if (closed) return;
      closed = true;
      try {
        file.close();
      } catch {
        // The readable stream closes the file when it ends.
      }
    },
  };
}

function fileErrorDetail(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file or directory";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  return error instanceof Error ? error.message : String(error);
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
