import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { silentLogger } from "../logging/logger.ts";
import type { MigrationStatus } from "../transport/messages.ts";
import type { ClusterAdmin } from "./cluster_admin.ts";
import type { RouterCore } from "./router_core.ts";
import { routerHandlers } from "./router_service.ts";

const RUNNING: MigrationStatus = {
  kind: "add",
  shard: "127.0.0.1:7004",
  started_at_ms: 1,
  state: "moving",
  error: "",
  keys_moved: 0,
  keys_to_move: 10,
  keys_scanned: 0,
  keys_to_scan: 40,
  finished_at_ms: 0,
};

/** A server stream as grpc-js hands it to a handler: the request, write/end, events. */
class FakeStream extends EventEmitter {
  readonly request = { shard: "127.0.0.1:7004", force: false, forget: false };
  readonly written: MigrationStatus[] = [];
  ended = false;
  write(status: MigrationStatus): boolean {
    this.written.push(status);
    return true;
  }
  end(): void {
    this.ended = true;
  }
}

/** Runs `body` counting the intervals it starts and has not cleared when it ends. */
async function intervalsLeftBy(body: () => Promise<void>): Promise<number> {
  type Id = ReturnType<typeof setInterval>;
  const live = new Set<Id>();
  const { setInterval: set, clearInterval: clear } = globalThis;
  globalThis.setInterval = ((...args: Parameters<typeof set>) => {
    const id = set(...args);
    live.add(id);
    return id;
  }) as typeof set;
  globalThis.clearInterval = ((id: Id) => {
    live.delete(id);
    clear(id);
  }) as typeof clear;
  try {
    await body();
  } finally {
    globalThis.setInterval = set;
    globalThis.clearInterval = clear;
    for (const id of live) clear(id);
  }
  return live.size;
}

Deno.test("a progress stream cancelled while its change is being checked leaves no timer behind", async () => {
  let started!: () => void;
  const checking = new Promise<void>((resolve) => started = resolve);
  let running = true;
  // The change stops running meanwhile: a heartbeat left behind would never see a caller.
  const admin = {
    addShard: () => checking,
    watch: () => () => {},
    current: () => running ? RUNNING : null,
  } as unknown as ClusterAdmin;
  const handlers = routerHandlers({
    core: {} as RouterCore,
    admin,
    readFrom: "master",
    info: () => Promise.reject(new Error("unused")),
    logger: silentLogger(),
  });
  const stream = new FakeStream();
  const left = await intervalsLeftBy(async () => {
    (handlers.AddShard as (call: unknown) => void)(stream);
    stream.emit("cancelled");
    started();
    await new Promise((resolve) => setTimeout(resolve, 10));
    running = false;
    await new Promise((resolve) => setTimeout(resolve, 300));
  });
  assert.deepEqual(stream.written, [], "nothing is written to a cancelled call");
  assert.equal(left, 0, "the heartbeat of a cancelled call is not left running");
});
