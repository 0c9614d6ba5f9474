import assert from "node:assert/strict";
import { silentLogger } from "../logging/logger.ts";
import { VolatileLog } from "../persistence/commit_log.ts";
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

function pipelineWith(log = new VolatileLog()) {
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
