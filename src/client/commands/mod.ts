/**
 * The list of client subcommands, in the order `kvstore help` shows them. A new
 * subcommand is a file in this folder and one entry here.
 *
 * @module
 */

import type { ClientCommand } from "../command.ts";
import { mget, mset, scan } from "./batch.ts";
import { cluster } from "./cluster.ts";
import { info } from "./info.ts";
import { del, exists, expire, get, set, ttl } from "./keys.ts";
import { health } from "./health.ts";
import { shell } from "./shell.ts";
import { exportCommand, importCommand } from "./bulk.ts";
import { bench } from "./bench.ts";
import { promote, replicaof, wait } from "./replication.ts";
import { digest, repair, snapshot } from "./persistence.ts";

export const COMMANDS: readonly ClientCommand[] = [
  get,
  set,
  del,
  exists,
  expire,
  ttl,
  mget,
  mset,
  scan,
  info,
  // Operations.
  health,
  shell,
  importCommand,
  exportCommand,
  bench,
  // Replication.
  promote,
  replicaof,
  wait,
  // Cluster.
  cluster,
  snapshot,
  digest,
  repair,
];
