/**
 * The server's command line: `kvstore [--master | --replica] [flags]`.
 *
 * Flags are declared once in {@linkcode SERVER_FLAGS}; the parser and the usage text are
 * both made from that table, so `--help` cannot drift from what is accepted. Every flag
 * can also come from the environment (`KVSTORE_MAX_VALUE_BYTES`) or a config file
 * (`--config kvstore.json`), with precedence flag > env > file > default: settings.ts
 * merges them, generically over the table. Parsing is pure: it takes the arguments, the
 * environment and a file reader, and returns a {@linkcode ServerConfig} or throws a
 * {@linkcode UsageError} whose message names the setting, as its source spells it, and
 * what is wrong with it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { DataLimits } from "../store/validation.ts";
import { type Address, formatAddress, parseAddress, parseAddressList } from "./address.ts";
import {
  BACKLOG_BYTES_DEFAULT,
  LOG_REWRITE_BYTES_MIN_DEFAULT,
  REPLICATION_PING_INTERVAL_MS,
  REPLICATION_TIMEOUT_MS_DEFAULT,
  REPLICATION_TIMEOUT_MS_MIN,
  SHUTDOWN_DISK_WAIT_MS_DEFAULT,
  SHUTDOWN_DISK_WAIT_MS_MAX,
  SHUTDOWN_DISK_WAIT_MS_MIN,
  SHUTDOWN_REPLICA_WAIT_MS_DEFAULT,
  SHUTDOWN_REPLICA_WAIT_MS_MAX,
  SNAPSHOT_INTERVAL_SECONDS_DEFAULT,
} from "./limits.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../logging/logger.ts";
import { FSYNC_POLICIES, type FsyncPolicy } from "../persistence/file_log.ts";
import { dataLimitFlags, MAX_CONNECTIONS_FLAG, parseConnectionsMax, parseDataLimits } from "./limit_flags.ts";
import { UsageError } from "./usage_error.ts";
import { twoColumns, wrapText } from "./usage_text.ts";
import { parseByteSize, parseChoice, parseInteger } from "./values.ts";
import { loadSettings, NODE_ENV_PREFIX, ROUTER_ENV_PREFIX, type SettingsSources, withSourceNames } from "./settings.ts";

export type Role = "master" | "replica";

export const DEFAULT_ADDRESS = "0.0.0.0:50051";

/** Everything a node needs to start, validated. */
export interface ServerConfig {
  readonly role: Role;
  /** The address to listen on; port 0 asks the OS for a free port. */
  readonly address: Address;
  /** For a replica: the master it follows. */
  readonly masterAddress: Address | null;
  /** For a master: replicas to push each command to (the C++ store's push mode). */
  readonly replicas: readonly Address[];
  readonly dataDir: string;
  readonly limits: DataLimits;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Where /metrics is served over HTTP; null when off. */
  readonly metricsAddress: Address | null;
  /** The config file the settings were read from, if any. */
  readonly configFile: string | null;
  /** Bytes of recent commands a master keeps for replicas that reconnect. */
  readonly backlogBytesMax: number;
  /** How long a replica goes without hearing from its master before reconnecting, in ms. */
  readonly replicationTimeoutMs: number;
  /** How long a master shutting down waits for its replicas to acknowledge its last
   * write, in ms; 0 does not wait (--shutdown-replica-wait-ms). */
  readonly shutdownReplicaWaitMs: number;
  /** How long a node shutting down waits on its disk at each step before it gives the
   * step up, in ms (--shutdown-disk-wait-ms; see SHUTDOWN_DISK_WAIT_MS_DEFAULT). */
  readonly shutdownDiskWaitMs: number;
  /** When the log is fsynced (--appendfsync). */
  readonly appendfsync: FsyncPolicy;
  /** Seconds between automatic snapshots; 0 turns them off (--snapshot-interval-seconds). */
  readonly snapshotIntervalSeconds: number;
  /** Size of the log past which, once it is also larger than the last snapshot, a
   * snapshot is taken to cut it; 0 turns that off (--log-rewrite-min-bytes). */
  readonly logRewriteBytesMin: number;
  /** Client connections kept open at once (--max-connections), before the open-file limit
   * lowers it (see FDS_RESERVED). */
  readonly connectionsMax: number;
}

/** One flag: its name without dashes, whether it takes a value, and its help line. */
export interface FlagSpec {
  readonly name: string;
  readonly type: "string" | "boolean";
  /** What the value is, for the usage text (`ADDR`, `BYTES`). */
  readonly valueName?: string;
  readonly help: string;
  readonly defaultText?: string;
}

/** The logging flags, shared by every kind of process (node, router). */
export const LOG_LEVEL_FLAG: FlagSpec = {
  name: "log-level",
  type: "string",
  valueName: LOG_LEVELS.join("|"),
  help: "Least severe log lines to print.",
  defaultText: "info",
};

export const LOG_FORMAT_FLAG: FlagSpec = {
  name: "log-format",
  type: "string",
  valueName: LOG_FORMATS.join("|"),
  help: "Human-readable lines or one JSON object per line.",
  defaultText: "text",
};

/** The metrics endpoint's flag, shared by a node and a router. */
export const METRICS_ADDRESS_FLAG: FlagSpec = {
  name: "metrics-address",
  type: "string",
  valueName: "HOST:PORT",
  help: "Serve Prometheus metrics at http://HOST:PORT/metrics (and /healthz); off unless given.",
};

export const SERVER_FLAGS: readonly FlagSpec[] = [
  { name: "master", type: "boolean", help: "Run as a master (the default)." },
  { name: "replica", type: "boolean", help: "Run as a read-only replica of --master-address." },
  {
    name: "address",
    type: "string",
    valueName: "HOST:PORT",
    help: "Address to serve gRPC on; port 0 picks a free port.",
    defaultText: DEFAULT_ADDRESS,
  },
  { name: "master-address", type: "string", valueName: "HOST:PORT", help: "The master a replica follows." },
  {
    name: "replicas",
    type: "string",
    valueName: "HOST:PORT,...",
    help: "Replicas a master pushes every write to (compatibility push mode).",
  },
  {
    name: "data-dir",
    type: "string",
    valueName: "DIR",
    help: "Directory for kvstore.rdb and kvstore.aof.",
    defaultText: "the working directory",
  },
  ...dataLimitFlags(),
  MAX_CONNECTIONS_FLAG,
  LOG_LEVEL_FLAG,
  LOG_FORMAT_FLAG,
  {
    name: "backlog-bytes",
    type: "string",
    valueName: "BYTES",
    help: "Recent writes a master keeps so reconnecting replicas get only what they missed.",
    defaultText: "32mb",
  },
  {
    name: "repl-timeout-ms",
    type: "string",
    valueName: "MS",
    help: "Silence after which a replica drops the link to its master and reconnects.",
    defaultText: String(REPLICATION_TIMEOUT_MS_DEFAULT),
  },
  {
    name: "shutdown-replica-wait-ms",
    type: "string",
    valueName: "MS",
    help: "How long a master shutting down waits for its replicas to acknowledge its last write; 0: no wait.",
    defaultText: String(SHUTDOWN_REPLICA_WAIT_MS_DEFAULT),
  },
  {
    name: "shutdown-disk-wait-ms",
    type: "string",
    valueName: "MS",
    help: "How long a node shutting down waits on a stalled disk (writes under way, snapshot, last fsync) " +
      "before it gives up and exits with status 1.",
    defaultText: String(SHUTDOWN_DISK_WAIT_MS_DEFAULT),
  },
  { name: "help", type: "boolean", help: "Print this help and exit." },
  // Operations.
  {
    name: "config",
    type: "string",
    valueName: "FILE",
    help: "Read settings from a JSON file of flag names and values (env KVSTORE_CONFIG).",
  },
  METRICS_ADDRESS_FLAG,
  {
    name: "appendfsync",
    type: "string",
    valueName: FSYNC_POLICIES.join("|"),
    help: "When the log is fsynced: before each answer, once a second, or when the OS likes.",
    defaultText: "everysec",
  },
  {
    name: "snapshot-interval-seconds",
    type: "string",
    valueName: "SECONDS",
    help: "Seconds between snapshots (kvstore.rdb) when the data changed; 0: none on a timer (one is still taken " +
      "when the log outgrows --log-rewrite-min-bytes and the last snapshot).",
    defaultText: String(SNAPSHOT_INTERVAL_SECONDS_DEFAULT),
  },
  {
    name: "log-rewrite-min-bytes",
    type: "string",
    valueName: "BYTES",
    help: "Size past which the log (kvstore.aof), once also larger than the last snapshot, is cut by a snapshot " +
      "whatever the interval; 0: only timed and asked-for snapshots cut it.",
    defaultText: "64mb",
  },
];

/** Flags that only the command line sets: the config file cannot name another config
 * file (KVSTORE_CONFIG is read separately), and help is not a setting. */
export const COMMAND_LINE_ONLY = ["help", "config"];

/** KVSTORE_* variables that are not server flags but are known, so they draw no warning:
 * the client's and the shell's, the crash points of the durability tests
 * (server/durability.ts), and the test and build tools' (the wire fuzz's, in
 * tests/wire_fuzz_test.ts, reach every server its run starts). (KVSTORE_CONFIG is known
 * to loadSettings.) */
export const OTHER_ENV_NAMES = [
  "KVSTORE_ENDPOINT",
  "KVSTORE_HISTFILE",
  "KVSTORE_CRASHPOINT",
  "KVSTORE_BIN",
  "KVSTORE_DENO_CACHE",
  "KVSTORE_FUZZ_SEED",
  "KVSTORE_FUZZ_CASES",
  "KVSTORE_FUZZ_SCALE",
  "KVSTORE_FUZZ_REPORT",
];

/** The result of parsing the server's arguments: a config to start (with warnings about
 * unknown settings, for the log), or a request for help. */
export type ServerArgs =
  | { readonly help: true }
  | { readonly help: false; readonly config: ServerConfig; readonly warnings: readonly string[] };

/** Parses the server's command line, environment and config file. Throws
 * {@linkcode UsageError} on any mistake. */
export function parseServerArgs(args: readonly string[], sources: SettingsSources = {}): ServerArgs {
  const flags = parseFlags(args, SERVER_FLAGS);
  if (flags.help === true) return { help: true };
  const settings = loadSettings({
    table: SERVER_FLAGS,
    flags,
    sources,
    envPrefix: NODE_ENV_PREFIX,
    // A router's variables are for a router on the same machine, not for the node.
    foreignEnvPrefixes: [ROUTER_ENV_PREFIX],
    commandLineOnly: COMMAND_LINE_ONLY,
    otherEnvNames: OTHER_ENV_NAMES,
    exclusiveGroups: [["master", "replica"]],
  });
  const config = withSourceNames(
    settings.sources,
    () => buildServerConfig({ ...settings.values, config: settings.configFile ?? undefined }),
  );
  return { help: false, config, warnings: settings.warnings };
}

type FlagValues = Record<string, string | boolean | undefined>;

/** Runs node:util parseArgs over a flag table, turning its errors into UsageErrors that
 * read like the rest of ours and point to `helpCommand` (the help of the command whose
 * flags these are). */
export function parseFlags(
  args: readonly string[],
  flags: readonly FlagSpec[],
  helpCommand = "kvstore --help",
): FlagValues {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const flag of flags) options[flag.name] = { type: flag.type === "boolean" ? "boolean" : "string" };
  try {
    const { values, positionals } = parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
    if (positionals.length > 0) {
      throw new UsageError(`Unexpected argument ${JSON.stringify(positionals[0])} (see ${helpCommand})`);
    }
    return values as FlagValues;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(describeParseError(error, helpCommand));
  }
}

function describeParseError(error: unknown, helpCommand: string): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const flag = /'(-{1,2}[^' ]+)/.exec(message)?.[1] ?? "";
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `Unknown flag ${flag} (see ${helpCommand})`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    if (message.includes("ambiguous")) {
      return `Flag ${flag} needs a value; write a value that starts with a dash as ${flag}=-VALUE`;
    }
    if (message.includes("does not take an argument")) return `Flag ${flag} takes no value (see ${helpCommand})`;
    return `Flag ${flag} needs a value (see ${helpCommand})`;
  }
  return `${message} (see ${helpCommand})`;
}

function buildServerConfig(values: FlagValues): ServerConfig {
  const asString = (name: string) => values[name] as string | undefined;
  if (values.master === true && values.replica === true) {
    throw new UsageError("Choose one of --master and --replica, not both");
  }
  const role: Role = values.replica === true ? "replica" : "master";
  const address = parseAddress(asString("address") ?? DEFAULT_ADDRESS, "--address");

  const masterAddressText = asString("master-address");
  const masterAddress = masterAddressText === undefined ? null : parseAddress(masterAddressText, "--master-address");
  if (role === "replica" && masterAddress === null) {
    throw new UsageError("A replica needs --master-address HOST:PORT naming the master to follow");
  }
  if (role === "master" && masterAddress !== null) {
    throw new UsageError("--master-address is for replicas; add --replica, or drop --master-address");
  }

  const replicasText = asString("replicas");
  const replicas = replicasText === undefined ? [] : parseAddressList(replicasText, "--replicas");
  if (role === "replica" && replicas.length > 0) {
    throw new UsageError("--replicas is for a master; a replica cannot push to other replicas");
  }
  const ownAddress = formatAddress(address);
  for (const replica of replicas) {
    if (formatAddress(replica) === ownAddress) {
      throw new UsageError(`--replicas names this node's own address ${ownAddress}`);
    }
  }

  const limits = parseDataLimits(asString);
  const dataDir = asString("data-dir") ?? ".";
  const metricsAddress = parseMetricsAddress(asString("metrics-address"), address);
  if (dataDir.trim() === "") throw new UsageError('Invalid --data-dir "": give a directory path');

  return {
    role,
    address,
    masterAddress,
    replicas,
    dataDir,
    limits,
    logLevel: parseChoice(asString("log-level") ?? "info", "--log-level", LOG_LEVELS),
    logFormat: parseChoice(asString("log-format") ?? "text", "--log-format", LOG_FORMATS),
    metricsAddress,
    configFile: asString("config") ?? null,
    backlogBytesMax: parseByteSize(
      asString("backlog-bytes") ?? String(BACKLOG_BYTES_DEFAULT),
      "--backlog-bytes",
      16 * 1024,
      64 * 1024 ** 3,
    ),
    replicationTimeoutMs: parseReplicationTimeout(
      asString("repl-timeout-ms") ?? String(REPLICATION_TIMEOUT_MS_DEFAULT),
    ),
    shutdownReplicaWaitMs: parseInteger(
      asString("shutdown-replica-wait-ms") ?? String(SHUTDOWN_REPLICA_WAIT_MS_DEFAULT),
      "--shutdown-replica-wait-ms",
      0,
      SHUTDOWN_REPLICA_WAIT_MS_MAX,
    ),
    shutdownDiskWaitMs: parseInteger(
      asString("shutdown-disk-wait-ms") ?? String(SHUTDOWN_DISK_WAIT_MS_DEFAULT),
      "--shutdown-disk-wait-ms",
      SHUTDOWN_DISK_WAIT_MS_MIN,
      SHUTDOWN_DISK_WAIT_MS_MAX,
    ),
    appendfsync: parseChoice(asString("appendfsync") ?? "everysec", "--appendfsync", FSYNC_POLICIES),
    snapshotIntervalSeconds: parseInteger(
      asString("snapshot-interval-seconds") ?? String(SNAPSHOT_INTERVAL_SECONDS_DEFAULT),
      "--snapshot-interval-seconds",
      0,
      365 * 24 * 60 * 60,
    ),
    logRewriteBytesMin: parseByteSize(
      asString("log-rewrite-min-bytes") ?? String(LOG_REWRITE_BYTES_MIN_DEFAULT),
      "--log-rewrite-min-bytes",
      0,
      1024 ** 4,
    ),
    connectionsMax: parseConnectionsMax(asString("max-connections")),
  };
}

/** Parses --repl-timeout-ms: at least two of the master's ping periods, or an idle but
 * healthy link would time out between pings and be reopened over and over. */
function parseReplicationTimeout(text: string): number {
  const timeoutMsMax = 24 * 60 * 60 * 1000;
  const timeoutMs = parseInteger(text, "--repl-timeout-ms", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (timeoutMs > timeoutMsMax) {
    throw new UsageError(
      `Invalid --repl-timeout-ms ${
        JSON.stringify(text)
      }: must be from ${REPLICATION_TIMEOUT_MS_MIN} to ${timeoutMsMax}`,
    );
  }
  if (timeoutMs < REPLICATION_TIMEOUT_MS_MIN) {
    throw new UsageError(
      `Invalid --repl-timeout-ms ${JSON.stringify(text)}: must be at least ${REPLICATION_TIMEOUT_MS_MIN} ` +
        `(the master pings an idle link every ${REPLICATION_PING_INTERVAL_MS} ms; a shorter timeout would drop ` +
        "healthy links)",
    );
  }
  return timeoutMs;
}

/** The usage text for `kvstore --help`. */
export function serverUsage(): string {
  const lines = [
    "kvstore: a distributed key-value store with a gRPC API.",
    "",
    "Usage:",
    "  kvstore [--master] [--address HOST:PORT] [--replicas HOST:PORT,...] [flags]",
    "  kvstore --replica --master-address HOST:PORT [--address HOST:PORT] [flags]",
    "",
    "Flags:",
  ];
  lines.push(...flagsTable(SERVER_FLAGS));
  lines.push(
    "",
    ...wrapText(
      "Sizes take a unit: 512kb, 16mb (powers of 1024). Every flag can also be set by the environment " +
        '(--max-value-bytes as KVSTORE_MAX_VALUE_BYTES) or a config file (--config kvstore.json with {"max-value-bytes": ' +
        '"64mb"}); flags win over the environment, which wins over the file.',
    ),
    "",
    "Examples:",
    "  kvstore --master --address 0.0.0.0:50051",
    "  kvstore --replica --address 0.0.0.0:50052 --master-address localhost:50051",
  );
  return lines.join("\n");
}

function flagLabel(flag: FlagSpec): string {
  return flag.type === "boolean" ? `--${flag.name}` : `--${flag.name} ${flag.valueName ?? "VALUE"}`;
}

/** The lines of a --help's flags: each flag, its help and its default, wrapped. */
export function flagsTable(flags: readonly FlagSpec[]): string[] {
  return twoColumns(flags.map((flag) => [
    flagLabel(flag),
    flag.help + (flag.defaultText === undefined ? "" : ` Default: ${flag.defaultText}.`),
  ]));
}

/** --metrics-address (null when not given), refused when it is the gRPC `address`
 * itself: the second listener would fail to bind, and only after the first one did. */
export function parseMetricsAddress(text: string | undefined, address: Address): Address | null {
  if (text === undefined) return null;
  const metricsAddress = parseAddress(text, "--metrics-address");
  const ownAddress = formatAddress(address);
  if (metricsAddress.port !== 0 && formatAddress(metricsAddress) === ownAddress) {
    throw new UsageError(`--metrics-address ${ownAddress} is the gRPC --address; give metrics a port of their own`);
  }
  return metricsAddress;
}
