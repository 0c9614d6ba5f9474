/**
 * Compatibility push mode: a master started with `--replicas a,b` pushes every committed
 * command to each address with ReplicateCommand, as the C++ store's master does.
 *
 * One link per address pushes commands one at a time, in seq order, from the backlog.
 * One at a time because a C++ replica applies pushes in the order they arrive without
 * looking at their seq, so two in flight could be applied in the wrong order. Each answer's
 * `last_applied_sequence` says where the replica is: the next push continues after it,
 * which resends what a replica missed (it answered with an older seq) and skips what it
 * already has (a replica of ours that also pulls may be ahead of the pushes). A push that
 * fails at the transport is retried with backoff; the link's state changes are logged
 * once each.
 *
 * The link's state, as Info shows it beside the replica, follows its connection, so it
 * tells the truth between writes too (a master may push nothing for hours):
 * "connecting" until the replica has first been reached, "online" while the connection
 * is up and pushes are answered, "down" while it cannot be reached or pushes fail.
 *
 * Push mode cannot resync a replica: a replica whose next command has left the backlog
 * misses those commands for good, which is logged as an error (size --backlog-bytes to
 * cover the downtime of push-only replicas). Replicas of ours also pull with
 * --master-address, which resyncs them whatever happens to the pushes.
 *
 * @module
 */

import {
  PUSH_CALL_DEADLINE_MS,
  REPLICA_RECONNECT_DELAY_MS_MAX,
  REPLICA_RECONNECT_DELAY_MS_MIN,
  REPLICATION_CHANNEL_RECONNECT_MS_MAX,
  REPLICATION_CHANNEL_RECONNECT_MS_MIN,
} from "../config/limits.ts";
import type { Logger } from "../logging/logger.ts";
import { CLIENT_TRANSPORT_LIMITS, createKvstoreClient, grpc } from "../transport/grpc.ts";
import { describeStatus } from "../transport/transport_failure.ts";
import type { ReplicationCommand, ReplicationResponse } from "../transport/messages.ts";
import type { Backlog } from "./backlog.ts";
import type { ReplicaRecord, ReplicaRegistry } from "./replica_registry.ts";
import { commandToWire, int64 } from "./wire.ts";

export interface PushLinkOptions {
  /** host:port of the replica. */
  readonly address: string;
  readonly backlog: () => Backlog;
  readonly registry: ReplicaRegistry;
  readonly replid: () => string;
  readonly logger: Logger;
  readonly clock: () => number;
}

export class PushLink {
  readonly address: string;
  #options: PushLinkOptions;
  #client: grpc.Client;
  #record: ReplicaRecord | null = null;
  #stopped = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #waitingForAppend = false;
  /** The push in flight, cancelled by stop: one to a replica that does not answer would
   * otherwise hold a master's shutdown for up to PUSH_CALL_DEADLINE_MS. */
  #call: grpc.ClientUnaryCall | null = null;
  /** The pending reopening of an idle connection (see #followConnection). */
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Whether the last push failed at the transport. */
  #down = false;
  #failures = 0;
  /** The last problem logged, so it is not logged again until something changes. */
  #logged = "";

  constructor(options: PushLinkOptions) {
    this.#options = options;
    this.address = options.address;
    this.#client = createKvstoreClient(options.address, CLIENT_TRANSPORT_LIMITS, {
      reconnect: { initialMs: REPLICATION_CHANNEL_RECONNECT_MS_MIN, maxMs: REPLICATION_CHANNEL_RECONNECT_MS_MAX },
    });
  }

  start(): void {
    const { registry, backlog, clock, logger } = this.#options;
    const firstSeq = backlog().lastSeq + 1;
    this.#record = registry.add({
      id: `push:${this.address}`,
      address: this.address,
      mode: "push",
      // Not reached yet: nothing was pushed, and the connection is not up.
      state: "connecting",
      ackedSeq: -1,
      firstSeq,
    }, clock());
    logger.info(`Pushing every write to replica ${this.address}`, { fromSeq: firstSeq });
    this.#followConnection();
    this.#loop ??= this.#run(firstSeq);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    this.#wake?.();
    this.#call?.cancel();
    await this.#loop;
    this.#client.close();
    if (this.#record !== null) this.#options.registry.remove(this.#record);
  }

  /** Wakes the link when it waits for new commands or a retry. */
  notifyAppended(): void {
    if (this.#waitingForAppend) this.#wake?.();
  }

  async #run(firstSeq: number): Promise<void> {
    let nextSeq = firstSeq;
    while (!this.#stopped) {
      const backlog = this.#options.backlog();
      if (nextSeq > backlog.lastSeq) {
        await this.#sleep(null);
        continue;
      }
      if (nextSeq < backlog.firstSeq) {
        if (this.#record!.node !== undefined) {
          // A kvstore replica (it names itself) also pulls, and its pull link resyncs it.
          this.#report(
            "info",
            "behind the backlog",
            `Replica ${this.address} needs commands that left the backlog; pushes resume once it resyncs by pulling`,
          );
        } else {
          const missed = `Replica ${this.address} missed seqs ${nextSeq} to ${backlog.firstSeq - 1}, which left ` +
            "the backlog; push mode cannot resync it, so it will differ from this master (raise --backlog-bytes, " +
            "or restart the replica empty)";
          this.#report("error", missed, missed);
        }
        nextSeq = backlog.firstSeq;
      }
      const entry = backlog.read(nextSeq - 1, { itemsMax: 1, bytesMax: Number.MAX_SAFE_INTEGER })![0];
      let response: ReplicationResponse;
      try {
        response = await this.#push(
          commandToWire(entry.seq, entry.command, this.#options.replid(), this.#options.clock()),
        );
      } catch (error) {
        if (this.#stopped) break;
        this.#failures++;
        this.#down = true;
        this.#options.registry.setState(this.#record!, "down");
        const problem = describe(error);
        this.#report("warn", problem, `Cannot push to replica ${this.address}: ${problem}; retrying`);
        await this.#sleep(this.#delayMs());
        continue;
      }
      if (this.#down) {
        this.#down = false;
        this.#logged = "";
        this.#options.logger.info(`Pushing to replica ${this.address} again`, { seq: entry.seq });
      }
      this.#failures = 0;
      this.#options.registry.setState(this.#record!, "online");
      if (response.replica_id) this.#record!.node = response.replica_id;
      const lastApplied = int64(response.last_applied_sequence, "last_applied_sequence");
      if (response.success) {
        this.#logged = "";
        this.#options.registry.ack(this.#record!, Math.max(lastApplied, entry.seq), this.#options.clock());
        nextSeq = Math.min(Math.max(lastApplied, entry.seq) + 1, this.#options.backlog().lastSeq + 1);
        continue;
      }
      // Refused: the replica lacks earlier commands (resend from what it has), holds another
      // history, or is loading a fullSync from its own pull link (retry shortly).
      const detail = response.detail || "refused";
      this.#report("warn", detail, `Replica ${this.address} did not apply seq ${entry.seq}: ${detail}`);
      if (response.replid === this.#options.replid() && lastApplied < entry.seq - 1) {
        nextSeq = lastApplied + 1;
        // Resend what it missed at once, unless that left the backlog: then it resyncs by
        // pulling, and resending at once would only repeat this refusal.
        if (nextSeq >= this.#options.backlog().firstSeq) continue;
      }
      this.#failures++;
      await this.#sleep(this.#delayMs());
    }
  }

  /**
   * Keeps the record's state in step with the connection while no push says more: up is
   * "online", a failed attempt "down". Once asked to connect, the channel retries a failed
   * connection on its own (REPLICATION_CHANNEL_RECONNECT_MS_MIN doubling to _MAX, as a replica's link to
   * its master does), but a connection that closes leaves it idle: it is reopened here,
   * at once after one that lasted (an idle spell), and with the pushes' own backoff
   * (REPLICA_RECONNECT_DELAY_MS_MIN doubling to _MAX) after one closed within _MAX of
   * being opened (a replica that drops connections). A replica that goes away between
   * writes is thus shown down, and one that comes back online, before the next write.
   * Ends when the link stops.
   */
  #followConnection(): void {
    const channel = this.#client.getChannel();
    const { clock } = this.#options;
    let failures = 0;
    let openedAtMs = -Infinity;
    const follow = () => {
      if (this.#stopped) return;
      const state = channel.getConnectivityState(false);
      if (state === grpc.connectivityState.READY) {
        this.#options.registry.setState(this.#record!, "online");
      } else if (state === grpc.connectivityState.TRANSIENT_FAILURE) {
        this.#options.registry.setState(this.#record!, "down");
      } else if (state === grpc.connectivityState.IDLE) {
        const failed = clock() - openedAtMs < REPLICA_RECONNECT_DELAY_MS_MAX;
        failures = failed ? failures + 1 : 0;
        if (failed) this.#options.registry.setState(this.#record!, "down");
        clearTimeout(this.#reconnectTimer);
        this.#reconnectTimer = setTimeout(() => {
          if (this.#stopped) return;
          openedAtMs = clock();
          // true: an idle channel starts to connect.
          channel.getConnectivityState(true);
        }, failures === 0 ? 0 : backoffMs(failures));
      }
      channel.watchConnectivityState(state, Infinity, follow);
    };
    follow();
  }

  #push(command: ReplicationCommand): Promise<ReplicationResponse> {
    return new Promise((resolve, reject) => {
      const method = (this.#client as unknown as Record<string, grpc.requestCallback<ReplicationResponse>>)
        .ReplicateCommand as unknown as (
          request: ReplicationCommand,
          metadata: grpc.Metadata,
          options: grpc.CallOptions,
          callback: grpc.requestCallback<ReplicationResponse>,
        ) => grpc.ClientUnaryCall;
      this.#call = method.call(
        this.#client,
        command,
        new grpc.Metadata(),
        { deadline: Date.now() + PUSH_CALL_DEADLINE_MS },
        (error, response) => {
          this.#call = null;
          if (error) reject(error);
          else resolve(response!);
        },
      );
    });
  }

  #delayMs(): number {
    return backoffMs(this.#failures);
  }

  /** Logs `message` unless the problem it reports (`problem`, the message without what
   * changes from one retry to the next, such as the seq) is the one logged last. */
  #report(level: "info" | "warn" | "error", problem: string, message: string): void {
    if (problem === this.#logged) return;
    this.#logged = problem;
    this.#options.logger[level](message);
  }

  /** Waits for `ms`, or for new commands when null; {@linkcode PushLink.stop} ends
   * either wait early. */
  #sleep(ms: number | null): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stopped) return resolve();
      const timer = ms === null ? undefined : setTimeout(() => done(), ms);
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        this.#waitingForAppend = false;
        resolve();
      };
      this.#wake = done;
      this.#waitingForAppend = ms === null;
    });
  }
}

/** The wait before the next attempt after `failures` in a row, in ms: doubling from
 * REPLICA_RECONNECT_DELAY_MS_MIN up to REPLICA_RECONNECT_DELAY_MS_MAX. */
function backoffMs(failures: number): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 20);
  return Math.min(REPLICA_RECONNECT_DELAY_MS_MAX, REPLICA_RECONNECT_DELAY_MS_MIN * 2 ** exponent);
}

function describe(error: unknown): string {
  const serviceError = error as Partial<grpc.ServiceError>;
  if (typeof serviceError.code === "number") return describeStatus(serviceError.code, serviceError.details ?? "");
  return error instanceof Error ? error.message : String(error);
}
