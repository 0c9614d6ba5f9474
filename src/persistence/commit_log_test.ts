/**
 * The CommitLog contract, one case table run against every implementation: the volatile
 * log and the file log under each fsync policy.
 */

import assert from "node:assert/strict";
import type { SequencedCommand } from "../store/command.ts";
import { type CommitLog, VolatileLog } from "./commit_log.ts";
import { FSYNC_POLICIES, type FsyncPolicy } from "./file_log.ts";
import { seededRandom, SimStorage } from "./sim_storage.ts";
import { contents, openPersistence, set } from "./test_support.ts";

interface Subject {
  readonly log: CommitLog;
  /** What a restart would read back, as store contents (null: keeps nothing). */
  readonly reopen: () => Promise<Record<string, string> | null>;
}

const IMPLEMENTATIONS: [string, () => Promise<Subject>][] = [
  ["VolatileLog", () => Promise.resolve({ log: new VolatileLog(), reopen: () => Promise.resolve(null) })],
  ...FSYNC_POLICIES.map((policy): [string, () => Promise<Subject>] => [
    `FileLog with ${policy}`,
    async () => {
      const storage = new SimStorage({ random: seededRandom(1) });
      const opened = await openPersistence(storage, { fsync: policy });
      return {
        log: opened.persistence.log,
        reopen: async () => contents((await openPersistence(storage.afterProcessCrash(seededRandom(2)))).store),
      };
    },
  ]),
];

const batch = (first: number, count: number): SequencedCommand[] =>
  Array.from({ length: count }, (_, i) => ({ seq: first + i, command: set(`k${first + i}`, `v${first + i}`) }));

const CASES: [string, (subject: Subject) => Promise<void>][] = [
  ["consecutive batches resolve, and a restart finds them in order", async ({ log, reopen }) => {
    await log.append(batch(1, 3));
    await log.append(batch(4, 1));
    const found = await reopen();
    if (found !== null) assert.deepEqual(Object.keys(found), ["k1", "k2", "k3", "k4"]);
  }],
  ["an empty batch resolves and changes nothing", async ({ log, reopen }) => {
    await log.append([]);
    await log.append(batch(1, 1));
    const found = await reopen();
    if (found !== null) assert.deepEqual(found, { k1: "v1" });
  }],
  ["sync resolves after the appends it follows, which a restart finds", async ({ log, reopen }) => {
    await log.append(batch(1, 2));
    await log.sync();
    await log.sync();
    const found = await reopen();
    if (found !== null) assert.deepEqual(found, { k1: "v1", k2: "v2" });
  }],
  ["close resolves after the appends it follows", async ({ log, reopen }) => {
    await log.append(batch(1, 2));
    await log.close();
    const found = await reopen();
    if (found !== null) assert.deepEqual(found, { k1: "v1", k2: "v2" });
  }],
];

for (const [implementation, make] of IMPLEMENTATIONS) {
  for (const [behaviour, check] of CASES) {
    Deno.test(`${implementation}: ${behaviour}`, async () => check(await make()));
  }
}

const SYNCS_PER_BATCH: Record<FsyncPolicy, number> = { always: 1, everysec: 0, no: 0 };

for (const policy of FSYNC_POLICIES) {
  Deno.test(`FileLog with ${policy} fsyncs ${SYNCS_PER_BATCH[policy]} time(s) per batch, and sync() flushes`, async () => {
    const storage = new SimStorage({ random: seededRandom(1) });
    const opened = await openPersistence(storage, { fsync: policy });
    const log = opened.persistence.log;
    const before = storage.syncs;
    await log.append(batch(1, 5));
    await log.append(batch(6, 5));
    assert.equal(storage.syncs - before, 2 * SYNCS_PER_BATCH[policy]);
    await log.sync();
    assert.equal(storage.syncs - before, policy === "always" ? 2 : 1, "sync() flushes only what is not yet synced");
    await log.sync();
    assert.equal(storage.syncs - before, policy === "always" ? 2 : 1, "a second sync() finds nothing to do");
    const afterPowerCut = await openPersistence(storage.afterPowerCut(seededRandom(3)));
    assert.equal(afterPowerCut.staging.committedSeq, 10, "every synced write survives a power cut");
  });
}
