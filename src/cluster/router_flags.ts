/**
 * The router's command line: `kvstore router --shards SHARD,... [flags]`.
 *
 * Like the node's, the flags are one table ({@linkcode ROUTER_FLAGS}) from which both
 * the parser and `kvstore router --help` are made, and every flag can also come from the
 * environment or a config file, with precedence flag > env > file > default, read by the
 * node's code (config/settings.ts). The router's variables have a prefix of their own,
 * `KVSTORE_ROUTER_` (`KVSTORE_ROUTER_SHARDS`; the file from `--config FILE` or
 * `KVSTORE_ROUTER_CONFIG`), so that a node's `KVSTORE_ADDRESS` on the same machine does
 * not move the router. Parsing is pure and throws a UsageError naming the setting as its
 * source spells it.
 *
 * @module
 */

import { type Address, formatAddress, parseAddress } from "../config/address.ts";
import {
  BATCH_KEYS_MAX,
  MIGRATION_BATCH_KEYS,
  MIGRATION_PAUSE_MS_DEFAULT,
  ROUTER_CONNECT_TIMEOUT_MS_DEFAULT,
  VNODES_PER_SHARD_DEFAULT,
  VNODES_PER_SHARD_MAX,
} from "../config/limits.ts";
import {
  COMMAND_LINE_ONLY,
  DEFAULT_ADDRESS,
  type FlagSpec,
  flagsTable,
  LOG_FORMAT_FLAG,
  LOG_LEVEL_FLAG,
  METRICS_ADDRESS_FLAG,
  parseFlags,
  parseMetricsAddress,
} from "../config/server_flags.ts";
import {
  envVarName,
  loadSettings,
  ROUTER_ENV_PREFIX,
  type SettingsSources,
  withSourceNames,
} from "../config/settings.ts";
import { dataLimitFlags, MAX_CONNECTIONS_FLAG, parseConnectionsMax, parseDataLimits } from "../config/limit_flags.ts";
import { UsageError } from "../config/usage_error.ts";
import { wrapText } from "../config/usage_text.ts";
import { parseChoice, parseInteger } from "../config/values.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../logging/logger.ts";
import type { DataLimits } from "../store/validation.ts";
import { READ_FROM_CHOICES, type ReadFrom } from "./shard_api.ts";
import { parseShardList, type ShardSpec } from "./shard_spec.ts";

export interface RouterConfig {
  readonly address: Address;
  /** The shards of a new cluster; null when the state file is to say (a restart). */
  readonly shards: readonly ShardSpec[] | null;
  /** The setting that gave `shards`, as its source spells it (`--shards`,
   * `KVSTORE_ROUTER_SHARDS`, `shards (from router.json)`), for messages about it. */
  readonly shardsSetting: string;
  readonly dataDir: string;
  readonly vnodes: number;
  /** Where reads go unless a call asks otherwise. */
  readonly readFrom: ReadFrom;
  readonly connectTimeoutMs: number;
  /** Client connections kept open at once (--max-connections), before the open-file limit
   * lowers it (see ROUTER_LINK_FDS_RESERVED). */
  readonly connectionsMax: number;
  /** Keys moved per step of a rebalancing, and the pause between steps (ms). */
  readonly migrationBatchKeys: number;
  readonly migrationPauseMs: number;
  /** The shards' limits, checked by the router so a batch is refused whole. */
  readonly limits: DataLimits;
  /** Where /metrics and /healthz are served over HTTP; null when off. */
  readonly metricsAddress: Address | null;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** The config file the settings were read from, if any. */
  readonly configFile: string | null;
}

export const ROUTER_FLAGS: readonly FlagSpec[] = [
  {
    name: "address",
    type: "string",
    valueName: "HOST:PORT",
    help: "Address to serve gRPC on; port 0 picks a free port.",
    defaultText: DEFAULT_ADDRESS,
  },
  {
    name: "shards",
    type: "string",
    valueName: "SHARD,...",
    help: "The shards of a new cluster, each [NAME=]MASTER[+REPLICA...]. Read once: after that the " +
      "router's state file holds the ring, changed by kvstore cluster add-shard/remove-shard.",
  },
  {
    name: "data-dir",
    type: "string",
    valueName: "DIR",
    help: "Directory for the router's state file, kvstore-cluster.json.",
    defaultText: "the working directory",
  },
  {
    name: "vnodes",
    type: "string",
    valueName: "N",
    help: "Virtual nodes per shard on the hash ring (fixed when the cluster is created).",
    defaultText: String(VNODES_PER_SHARD_DEFAULT),
  },
  {
    name: "read-from",
    type: "string",
    valueName: READ_FROM_CHOICES.join("|"),
    help: "Where reads go; a call may ask for replicas with the metadata kvstore-read-from: replica.",
    defaultText: "master",
  },
  {
    name: "connect-timeout-ms",
    type: "string",
    valueName: "MS",
    help: "How long a call waits for a shard's connection before failing with UNAVAILABLE.",
    defaultText: String(ROUTER_CONNECT_TIMEOUT_MS_DEFAULT),
  },
  {
    name: "migration-batch-keys",
    type: "string",
    valueName: "N",
    help: "Keys moved per step when a shard is added or removed (calls on them wait for the step).",
    defaultText: String(MIGRATION_BATCH_KEYS),
  },
  {
    name: "migration-pause-ms",
    type: "string",
    valueName: "MS",
    help: "Pause between steps of a rebalancing, leaving the shards room for client calls.",
    defaultText: String(MIGRATION_PAUSE_MS_DEFAULT),
  },
  ...dataLimitFlags("Keep it equal to the shards'."),
  MAX_CONNECTIONS_FLAG,
  METRICS_ADDRESS_FLAG,
  LOG_LEVEL_FLAG,
  LOG_FORMAT_FLAG,
  { name: "help", type: "boolean", help: "Print this help and exit." },
  {
    name: "config",
    type: "string",
    valueName: "FILE",
    help: `Read settings from a JSON file of flag names and values (env ${envVarName("config", ROUTER_ENV_PREFIX)}).`,
  },
];

/** The result of parsing the router's arguments: a config to start (with warnings about
 * unknown settings, for the log), or a request for help. */
export type RouterArgs =
  | { readonly help: true }
  | { readonly help: false; readonly config: RouterConfig; readonly warnings: readonly string[] };

/** Parses `kvstore router`'s arguments (without the word `router`), environment and
 * config file. Throws a UsageError on any mistake. */
export function parseRouterArgs(args: readonly string[], sources: SettingsSources = {}): RouterArgs {
  const flags = parseFlags(args, ROUTER_FLAGS, "kvstore router --help");
  if (flags.help === true) return { help: true };
  const settings = loadSettings({
    table: ROUTER_FLAGS,
    flags,
    sources,
    envPrefix: ROUTER_ENV_PREFIX,
    commandLineOnly: COMMAND_LINE_ONLY,
  });
  const built = withSourceNames(settings.sources, () => buildRouterConfig(settings.values, settings.configFile));
  const config = { ...built, shardsSetting: settings.sources.get("shards")?.label ?? "--shards" };
  return { help: false, config, warnings: settings.warnings };
}

function buildRouterConfig(
  values: Record<string, string | boolean | undefined>,
  configFile: string | null,
): Omit<RouterConfig, "shardsSetting"> {
  const text = (name: string) => values[name] as string | undefined;
  const shardsText = text("shards");
  const address = parseAddress(text("address") ?? DEFAULT_ADDRESS, "--address");
  const shards = shardsText === undefined ? null : parseShardList(shardsText, "--shards");
  const own = formatAddress(address);
  const loop = shards?.find((spec) => [spec.master, ...spec.replicas].includes(own));
  if (loop !== undefined) {
    throw new UsageError(`Invalid --shards: shard ${JSON.stringify(loop.name)} is the router's own --address ${own}`);
  }
  const dataDir = text("data-dir") ?? ".";
  if (dataDir.trim() === "") throw new UsageError('Invalid --data-dir "": give a directory path');
  return {
    address,
    shards,
    dataDir,
    vnodes: parseInteger(text("vnodes") ?? String(VNODES_PER_SHARD_DEFAULT), "--vnodes", 1, VNODES_PER_SHARD_MAX),
    readFrom: parseChoice(text("read-from") ?? "master", "--read-from", READ_FROM_CHOICES),
    connectTimeoutMs: parseInteger(
      text("connect-timeout-ms") ?? String(ROUTER_CONNECT_TIMEOUT_MS_DEFAULT),
      "--connect-timeout-ms",
      1,
      600_000,
    ),
    connectionsMax: parseConnectionsMax(text("max-connections")),
    migrationBatchKeys: parseInteger(
      text("migration-batch-keys") ?? String(MIGRATION_BATCH_KEYS),
      "--migration-batch-keys",
      1,
      BATCH_KEYS_MAX,
    ),
    migrationPauseMs: parseInteger(
      text("migration-pause-ms") ?? String(MIGRATION_PAUSE_MS_DEFAULT),
      "--migration-pause-ms",
      0,
      60_000,
    ),
    limits: parseDataLimits(text),
    metricsAddress: parseMetricsAddress(text("metrics-address"), address),
    logLevel: parseChoice(text("log-level") ?? "info", "--log-level", LOG_LEVELS),
    logFormat: parseChoice(text("log-format") ?? "text", "--log-format", LOG_FORMATS),
    configFile,
  };
}

/** The usage text for `kvstore router --help`. */
export function routerUsage(): string {
  return [
    ...wrapText(
      "kvstore router: one address in front of a sharded cluster. It serves kvstore.KeyValueStore and forwards " +
        "each call to the shard that owns the key on a consistent-hash ring.",
    ),
    "",
    "Usage:",
    "  kvstore router --shards SHARD,... [--address HOST:PORT] [--data-dir DIR] [flags]",
    "  kvstore router [--data-dir DIR] [flags]        (a restart: the state file names the shards)",
    "",
    "A SHARD is [NAME=]MASTER[+REPLICA...], e.g. 127.0.0.1:7001 or users=10.0.0.5:50051+10.0.0.6:50051.",
    "",
    "Flags:",
    ...flagsTable(ROUTER_FLAGS),
    "",
    ...wrapText(
      "Sizes take a unit: 512kb, 16mb (powers of 1024). Every flag can also be set by the environment, with a " +
        "prefix of the router's own so that a node's variables do not reach it (--shards as " +
        "KVSTORE_ROUTER_SHARDS, --config as KVSTORE_ROUTER_CONFIG), or a config file (--config router.json with " +
        '{"shards": ["127.0.0.1:7001", "127.0.0.1:7002"]}); flags win over the environment, which wins over the ' +
        "file.",
    ),
    "",
    "Grow or shrink the cluster with kvstore cluster add-shard / remove-shard against the router.",
    "",
    "Example:",
    "  kvstore router --address 0.0.0.0:50051 --shards 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
  ].join("\n");
}
