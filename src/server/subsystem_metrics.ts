/**
 * The metrics of persistence and replication, registered on the node's registry.
 *
 * Gauges read state when scraped (`collect`), so they cost nothing between scrapes;
 * durations are observed as they happen, through the hooks FileLog (each fsync) and
 * FilePersistence (each snapshot) expose. Names follow src/metrics/registry.ts.
 *
 * @module
 */

import { DURATION_BUCKETS_SECONDS, type MetricsRegistry } from "../metrics/registry.ts";
import type { FilePersistence } from "../persistence/file_persistence.ts";
import type { Replication } from "../replication/replication.ts";
import type { WriteStaging } from "../store/staging.ts";

/** Log size, fsync latency, snapshots: duration, outcome, age. */
export function registerPersistenceMetrics(registry: MetricsRegistry, persistence: FilePersistence): void {
  registry.gauge({
    name: "kvstore_log_bytes",
    help: "Size of the log (kvstore.aof), in bytes.",
    collect: () => persistence.status().logBytes,
  });
  const fsyncs = registry.histogram({
    name: "kvstore_log_fsync_duration_seconds",
    help: "Time each fsync of the log took.",
    buckets: DURATION_BUCKETS_SECONDS,
  });
  persistence.log.onFsync = (durationMs) => fsyncs.observe(durationMs / 1000);
  const snapshotDurations = registry.histogram({
    name: "kvstore_snapshot_duration_seconds",
    help: "Time each snapshot took to write, whether it succeeded or not.",
    buckets: DURATION_BUCKETS_SECONDS,
  });
  const snapshots = registry.counter({
    name: "kvstore_snapshots_total",
    help: "Snapshots ended since start, by outcome (ok, abandoned, failed).",
    labelNames: ["status"],
  });
  persistence.onSnapshot = (outcome, durationMs) => {
    snapshotDurations.observe(durationMs / 1000);
    snapshots.inc({ status: outcome });
  };
  registry.gauge({
    name: "kvstore_last_snapshot_timestamp_seconds",
    help: "When the last successful snapshot began, in unix seconds (0: none yet).",
    collect: () => persistence.status().lastSnapshotAtMs / 1000,
  });
}

/** The seq, each replica's lag (on a master), the link (on a replica), syncs served. */
export function registerReplicationMetrics(
  registry: MetricsRegistry,
  replication: Replication,
  staging: WriteStaging,
): void {
  registry.gauge({
    name: "kvstore_replication_seq",
    help: "The seq of the last write this node holds.",
    collect: () => staging.committedSeq,
  });
  registry.gauge({
    name: "kvstore_replication_connected_replicas",
    help: "Replicas attached to this master.",
    collect: () => replication.replicaStatuses().length,
  });
  registry.gauge({
    name: "kvstore_replication_lag_seq",
    help: "Writes each replica has yet to acknowledge (on a master).",
    labelNames: ["replica"],
    collect: () =>
      replication.replicaStatuses().map((status) => ({ labels: { replica: status.address }, value: status.lagSeqs })),
  });
  registry.gauge({
    name: "kvstore_replication_lag_seconds",
    help: "How far behind each replica is, in seconds of the master's writes (on a master).",
    labelNames: ["replica"],
    collect: () =>
      replication.replicaStatuses().map((status) => ({
        labels: { replica: status.address },
        value: status.lagMs / 1000,
      })),
  });
  registry.gauge({
    name: "kvstore_replication_link_up",
    help: "On a replica: 1 while the link to its master is up, else 0 (absent on a master).",
    collect: () => {
      const state = replication.linkState;
      return state === null ? [] : [{ value: state === "up" || state === "push-only" ? 1 : 0 }];
    },
  });
  registry.gauge({
    name: "kvstore_replication_master_lag_seq",
    help: "On a replica: writes its master had that it has yet to apply (absent on a master).",
    collect: () => {
      const masterSeq = replication.masterLastSeq;
      return masterSeq === null ? [] : [{ value: Math.max(0, masterSeq - staging.committedSeq) }];
    },
  });
  registry.gauge({
    name: "kvstore_replication_waits_blocked",
    help: "Wait calls blocked until enough replicas acknowledge (on a master).",
    collect: () => replication.waitsBlocked,
  });
  registry.counter({
    name: "kvstore_replication_syncs_total",
    help: "Syncs this node served as a master, by kind (fullSync, partialSync).",
    labelNames: ["kind"],
    collect: () =>
      (["fullSync", "partialSync"] as const).map((kind) => ({
        labels: { kind },
        value: replication.syncsServed[kind],
      })),
  });
}
