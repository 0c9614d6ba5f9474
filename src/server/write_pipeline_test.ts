import assert from "node:assert/strict";
import { KvError } from "../errors.ts";
import { Logger, silentLogger } from "../logging/logger.ts";
import { type CommitLog, VolatileLog } from "../persistence/commit_log.ts";
import type { SequencedCommand, WriteCommand } from "../store/command.ts";
import { Store } from "../store/store.ts";
import { WriteStaging } from "../store/staging.ts";
import { WritePipeline } from "./write_pipeline.ts";

/** Rejects if `promise` has not settled within `ms`: a hang fails the test instead of
 * stalling the run. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function pipelineWith(log: CommitLog = new VolatileLog()) {
  return new WritePipeline(new WriteStaging(new Store()), log, silentLogger());
}

Deno.test("drain commits commands staged without anyone waiting for them", async () => {
  // A replica stages a message's commands one by one and waits only for the last; a
  // message that turns out bad half-way leaves the first ones staged, and the resync
  // that follows drains the pipeline before anything else.
  const pipeline = pipelineWith();
  pipeline.staging.stage({ kind: "set", key: "a", value: "1", expiresAtMs: null });
  pipeline.staging.stage({ kind: "set", key: "b", value: "2", expiresAtMs: null });
  await within(pipeline.drain(), 2000, "drain");
  assert.equal(pipeline.staging.committedSeq, 2);
  assert.equal(pipeline.staging.store.peek("b")?.value, "2");
});

/** A log whose appends wait until the test settles them, one at a time. */
class HeldLog implements CommitLog {
  held: PromiseWithResolvers<void>[] = [];
  appended: number[][] = [];
  append(batch: readonly SequencedCommand[]): Promise<void> {
    this.appended.push(batch.map((staged) => staged.seq));
    const append = Promise.withResolvers<void>();
    this.held.push(append);
    return append.promise;
  }
  sync(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function set(key: string): WriteCommand {
  return { kind: "set", key, value: "v", expiresAtMs: null };
}

Deno.test("writers of a batch in flight and of the commands queued behind it all hear of its failure", async () => {
  const log = new HeldLog();
  const pipeline = pipelineWith(log);
  const first = pipeline.commit(pipeline.staging.stage(set("a")));
  await waitFor(() => log.held.length === 1);
  const queued = [pipeline.commit(pipeline.staging.stage(set("b"))), pipeline.commit(pipeline.staging.stage(set("c")))];
  log.held[0].reject(new KvError("UNAVAILABLE", "log: Cannot append: disk full"));
  for (const write of [first, ...queued]) await assert.rejects(within(write, 2000, "a write"), /disk full/);
  assert.deepEqual(log.appended, [[1]], "the commands queued behind the failed batch are dropped, not appended");
  assert.equal(pipeline.staging.lastSeq, 0);
  assert.equal(pipeline.staging.store.size, 0);
  await within(pipeline.drain(), 2000, "drain");
});

Deno.test("a bounded drain over a log whose append never finishes gives up at its bound and fails the waiting writes", async () => {
  // A stalled disk: the batch's append (an fsync that hangs) never resolves.
  const log = new HeldLog();
  const pipeline = pipelineWith(log);
  const inFlight = pipeline.commit(pipeline.staging.stage(set("a")));
  await waitFor(() => log.held.length === 1);
  const queued = [pipeline.commit(pipeline.staging.stage(set("b"))), pipeline.commit(pipeline.staging.stage(set("c")))];
  const abandoned = new KvError("UNAVAILABLE", "server: Shutting down before the disk took this write");
  const startedMs = performance.now();
  const waiting = await within(pipeline.drainWithin(50, abandoned), 2000, "the bounded drain");
  assert.ok(performance.now() - startedMs >= 45, "it waited for its bound first");
  assert.equal(waiting, 3, "the batch in flight and the two queued behind it");
  for (const write of [inFlight, ...queued]) {
    assert.equal(await within(write.then(() => null, (error) => error), 2000, "a write"), abandoned);
  }
  assert.equal(pipeline.staging.committedSeq, 0, "nothing was acknowledged");
  assert.equal(pipeline.staging.store.size, 0);
  // From now on nothing waits for the disk: a drain resolves, a commit fails, nothing is appended.
  await within(pipeline.drain(), 2000, "drain after the bound");
  await within(pipeline.committedUpTo(3).then(() => assert.fail("confirmed"), () => {}), 2000, "committedUpTo");
  const late = pipeline.staging.stage(set("d"));
  await assert.rejects(within(pipeline.commit(late), 2000, "a later write"), /Shutting down before the disk/);
  pipeline.flushSoon();
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(log.appended, [[1]], "only the batch already in flight reached the log");
  // The append finishing late changes nothing for the writers, who were already answered.
  log.held[0].resolve();
  await within(pipeline.drain(), 2000, "drain after the late append");
});

Deno.test("a bounded drain over a log that takes the writes resolves with 0 before its bound", async () => {
  const log = new HeldLog();
  const pipeline = pipelineWith(log);
  const write = pipeline.commit(pipeline.staging.stage(set("a")));
  await waitFor(() => log.held.length === 1);
  setTimeout(() => log.held[0].resolve(), 5);
  const abandoned = new KvError("UNAVAILABLE", "never used");
  assert.equal(await within(pipeline.drainWithin(60_000, abandoned), 2000, "the bounded drain"), 0);
  await within(write, 2000, "the write");
  assert.equal(pipeline.staging.committedSeq, 1);
  // The pipeline works on: the bound was not reached.
  const next = pipeline.commit(pipeline.staging.stage(set("b")));
  await waitFor(() => log.held.length === 2);
  log.held[1].resolve();
  await within(next, 2000, "the next write");
});

Deno.test("writers are answered batch by batch, in order, after the log holds their batch", async () => {
  const log = new HeldLog();
  const pipeline = pipelineWith(log);
  const answered: string[] = [];
  const write = (key: string) => pipeline.commit(pipeline.staging.stage(set(key))).then(() => answered.push(key));
  const writes = [write("a")];
  await waitFor(() => log.held.length === 1);
  writes.push(write("b"), write("c"));
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(answered, [], "nothing is answered before its batch is durable");
  log.held[0].resolve();
  await waitFor(() => log.held.length === 2);
  assert.deepEqual(answered, ["a"]);
  assert.deepEqual(log.appended, [[1], [2, 3]]);
  log.held[1].resolve();
  await within(Promise.all(writes), 2000, "the writes");
  assert.deepEqual(answered, ["a", "b", "c"]);
  assert.equal(pipeline.staging.committedSeq, 3);
});

Deno.test("waiting for a command that is no longer queued is refused rather than left hanging", async () => {
  const log = new HeldLog();
  const pipeline = pipelineWith(log);
  const staged = pipeline.staging.stage(set("a"));
  const write = pipeline.commit(staged);
  await waitFor(() => log.held.length === 1);
  assert.throws(() => pipeline.commit(staged), /Cannot wait for seq 1: it is not queued/);
  log.held[0].resolve();
  await write;
  assert.throws(() => pipeline.commit(staged), /not queued/);
});

Deno.test("client writes are refused while more than the queue's limit waits for the log, and taken again after", async () => {
  const log = new HeldLog();
  // Each staged SET of a 1-character key and value counts 66 bytes (and its call nothing here).
  const pipeline = new WritePipeline(new WriteStaging(new Store()), log, silentLogger(), {
    queueBytesMax: 200,
    callOverheadBytes: 0,
  });
  const writes = [pipeline.commit(pipeline.staging.stage(set("a")))];
  await waitFor(() => log.held.length === 1);
  // The disk stalls: the first batch is held, and writes pile up behind it.
  for (const key of ["b", "c", "d"]) {
    pipeline.admitWrite();
    writes.push(pipeline.commit(pipeline.staging.stage(set(key))));
  }
  assert.equal(pipeline.staging.pendingBytes, 4 * 66);
  assert.throws(
    () => pipeline.admitWrite(),
    (error) =>
      error instanceof KvError && error.code === "UNAVAILABLE" &&
      /^pipeline: Cannot take the write now: 0\.0 MiB of writes \(4 calls\) already wait for the log, over the limit of 0\.0 MiB; the disk is slow or stalled/
        .test(error.message),
  );
  log.held[0].resolve();
  await waitFor(() => log.held.length === 2);
  log.held[1].resolve();
  await within(Promise.all(writes), 2000, "the writes");
  assert.equal(pipeline.staging.pendingBytes, 0, "committed writes wait no more");
  pipeline.admitWrite();

  // A failed batch drops what waited, and the count with it.
  const failing = pipeline.commit(pipeline.staging.stage(set("e")));
  await waitFor(() => log.held.length === 3);
  log.held[2].reject(new KvError("UNAVAILABLE", "log: Cannot append: disk full"));
  await assert.rejects(within(failing, 2000, "the failing write"), /disk full/);
  assert.equal(pipeline.staging.pendingBytes, 0);
});

Deno.test("each call waiting for the log counts toward the queue's limit, however small its write", async () => {
  const log = new HeldLog();
  // Calls of tiny writes: what they hold while they wait is their call's state, which
  // their commands' bytes (66 each) do not show.
  const pipeline = new WritePipeline(new WriteStaging(new Store()), log, silentLogger(), {
    queueBytesMax: 3 * 1000,
    callOverheadBytes: 1000,
  });
  const writes = [pipeline.commit(pipeline.staging.stage(set("a")))];
  await waitFor(() => log.held.length === 1);
  pipeline.admitWrite();
  writes.push(pipeline.commit(pipeline.staging.stage(set("b"))));
  assert.equal(pipeline.waitingCalls, 2, "one call in the batch being written, one queued");
  pipeline.admitWrite();
  writes.push(pipeline.commit(pipeline.staging.stage(set("c"))));
  assert.throws(() => pipeline.admitWrite(), /Cannot take the write now: .* \(3 calls\) already wait for the log/);
  log.held[0].resolve();
  await waitFor(() => log.held.length === 2);
  assert.equal(pipeline.waitingCalls, 2, "the first call was answered");
  pipeline.admitWrite();
  log.held[1].resolve();
  await within(Promise.all(writes), 2000, "the writes");
  assert.equal(pipeline.waitingCalls, 0);

  // Calls of a failed batch, and those queued behind it, wait no more either.
  const failing = [pipeline.commit(pipeline.staging.stage(set("d")))];
  await waitFor(() => log.held.length === 3);
  failing.push(pipeline.commit(pipeline.staging.stage(set("e"))));
  log.held[2].reject(new KvError("UNAVAILABLE", "log: Cannot append: disk full"));
  await Promise.allSettled(failing);
  assert.equal(pipeline.waitingCalls, 0);
});

/** A log that fails every append until told otherwise, like a full disk. */
class FullDiskLog implements CommitLog {
  full = true;
  append(_batch: readonly SequencedCommand[]): Promise<void> {
    if (this.full) return Promise.reject(new KvError("UNAVAILABLE", "log: Cannot append: No space left on device"));
    return Promise.resolve();
  }
  sync(): Promise<void> {
    return this.full
      ? Promise.reject(new KvError("UNAVAILABLE", "log: Cannot sync: No space left on device"))
      : Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

Deno.test("a log that keeps failing is reported once, then in a summary per interval, then its recovery", async () => {
  const lines: string[] = [];
  const logger = new Logger({ level: "info", format: "text", sink: (line) => lines.push(line), clock: () => 0 });
  const log = new FullDiskLog();
  const clock = { nowMs: 1_000_000 };
  const pipeline = new WritePipeline(new WriteStaging(new Store()), log, logger.child("pipeline"), {
    clock: () => clock.nowMs,
  });
  const failOnce = async (keys: string[]) => {
    const writes = keys.map((key) => pipeline.commit(pipeline.staging.stage(set(key))).catch(() => {}));
    await within(Promise.all(writes), 2000, "failed writes");
  };
  for (let tick = 0; tick < 50; tick++) {
    await failOnce([`a${tick}`, `b${tick}`]); // ten a second, as the expiry sweep would
    clock.nowMs += 100;
  }
  const errors = lines.filter((line) => line.includes("ERROR"));
  assert.equal(errors.length, 1, "5 s of failures: the first line only");
  assert.match(errors[0], /Writes failed: the log could not take them writes=2 error=.*No space left/);
  for (let tick = 0; tick < 60; tick++) {
    await failOnce([`c${tick}`]);
    clock.nowMs += 100;
  }
  const summaries = lines.filter((line) => line.includes("Writes still fail"));
  assert.equal(summaries.length, 1, "one summary after 10 s");
  assert.match(summaries[0], /batches=100 writes=149 seconds=10 error=.*No space left/);
  log.full = false;
  await pipeline.commit(pipeline.staging.stage(set("ok")));
  assert.match(lines.at(-1)!, /INFO {2}pipeline: The log takes writes again failedBatches=110 failedWrites=160$/);
});

/** Polls `condition` every turn for up to 2 s. */
async function waitFor(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met within 2 s");
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
