/**
 * SIGKILL at random moments under concurrent load, round after round on one data
 * directory, with snapshots and log cuts going on: every acknowledged write survives,
 * and what each writer sees is an unbroken prefix of what it wrote.
 */

import assert from "node:assert/strict";
import { KvClient } from "../src/client/client.ts";
import { digestOf, startOn, tempDataDir } from "./helpers/durability.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const WRITERS = 4;
const ROUNDS = 4;

/**
 * Writer w's i-th operation: SET w:i (a new key), and for every fourth, DEL w:(i-2)
 * instead. Each writer runs its operations one at a time, so at most one is in flight
 * (unacknowledged) when the node dies.
 */
function operation(i: number): { kind: "set"; index: number } | { kind: "delete"; index: number } {
  return i % 4 === 3 ? { kind: "delete", index: i - 2 } : { kind: "set", index: i };
}

interface Writer {
  readonly name: string;
  /** Operations acknowledged so far (0..acked-1). */
  acked: number;
  /** Operations attempted (acked, plus one in flight when the node died). */
  attempted: number;
}

/** Runs writer `writer` until its calls fail (the node died). */
async function write(address: string, writer: Writer): Promise<void> {
  using client = new KvClient(address, { deadlineMs: 5000 });
  while (true) {
    const op = operation(writer.attempted);
    writer.attempted++;
    try {
      if (op.kind === "set") await client.set(`${writer.name}:${op.index}`, `value ${op.index}`);
      else await client.delete(`${writer.name}:${op.index}`);
    } catch {
      return;
    }
    writer.acked = writer.attempted;
  }
}

/** What key w:index must hold given the acknowledged and attempted operations:
 * "present", "absent", or "either" (touched by the one operation in flight). */
function expectation(writer: Writer, index: number): "present" | "absent" | "either" {
  const inFlight = writer.attempted > writer.acked ? operation(writer.attempted - 1) : null;
  if (inFlight !== null && inFlight.index === index) return "either";
  if (index % 4 === 3 || index >= writer.acked) return "absent"; // never a SET, or never acknowledged
  const deleteOp = index + 2; // the operation that deletes w:index, if index % 4 === 1
  if (index % 4 === 1 && deleteOp < writer.acked) return "absent";
  return "present";
}

async function verify(address: string, writers: Writer[], round: number): Promise<void> {
  using client = new KvClient(address, { deadlineMs: 10_000 });
  for (const writer of writers) {
    const indexes = Array.from({ length: writer.attempted + 2 }, (_, i) => i);
    const values = await client.mget(indexes.map((i) => `${writer.name}:${i}`));
    for (const i of indexes) {
      const want = expectation(writer, i);
      const got = values[i] === undefined ? "absent" : "present";
      if (want !== "either") {
        assert.equal(
          got,
          want,
          `round ${round}: ${writer.name}:${i} (acked ${writer.acked}, attempted ${writer.attempted})`,
        );
      }
      if (got === "present") assert.equal(values[i], `value ${i}`);
    }
  }
}

Deno.test("every acknowledged write survives SIGKILL at random moments under concurrent load", opts, async () => {
  await using dir = await tempDataDir();
  const writers: Writer[] = Array.from({ length: WRITERS }, (_, w) => ({ name: `w${w}`, acked: 0, attempted: 0 }));
  // Snapshots every second, so kills also land in snapshots and log cuts.
  const args = ["--snapshot-interval-seconds", "1"];
  for (let round = 1; round <= ROUNDS; round++) {
    await using server = await startOn(dir.path, { args });
    await verify(server.address, writers, round);
    // The next writes continue from where each writer's acknowledged history ends: an
    // operation in flight at the kill is retried under its own index (idempotent).
    for (const writer of writers) writer.attempted = writer.acked;
    const running = writers.map((writer) => write(server.address, writer));
    await new Promise((resolve) => setTimeout(resolve, 700 + Math.random() * 1300));
    await server.kill();
    await Promise.all(running);
  }
  await using server = await startOn(dir.path, { args });
  await verify(server.address, writers, ROUNDS + 1);
  const total = writers.reduce((sum, writer) => sum + writer.acked, 0);
  assert.ok(total > 200, `only ${total} writes were acknowledged over ${ROUNDS} rounds`);
  assert.match(server.stderr, /Loaded the dataset/);

  // A clean stop and start keeps the very same data.
  const before = await digestOf(server.address);
  assert.equal((await server.stop("SIGTERM")).code, 0);
  await using again = await startOn(dir.path);
  assert.deepEqual(await digestOf(again.address), before);
});
