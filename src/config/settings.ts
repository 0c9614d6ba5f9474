/**
 * Settings from three sources besides the defaults: the command line, environment
 * variables and a JSON config file, in that order of precedence (flag > env > file >
 * default), for every flag in a flag table. The node and the router both read theirs
 * here, each with its own prefix for the environment.
 *
 * Each flag `--some-flag` is also the environment variable `KVSTORE_SOME_FLAG` (for a
 * router, `KVSTORE_ROUTER_SOME_FLAG`) and the config-file key `"some-flag"`, so a flag
 * added to a table gets both with no more code. A config file is named by `--config
 * FILE` or the prefix's `CONFIG` variable (`KVSTORE_CONFIG`, `KVSTORE_ROUTER_CONFIG`):
 *
 * ```json
 * { "address": "0.0.0.0:50051", "data-dir": "/var/lib/kvstore", "max-value-bytes": "64mb",
 *   "replicas": ["10.0.0.2:50051", "10.0.0.3:50051"], "log-format": "json" }
 * ```
 *
 * Values: a string flag takes a string, a number (written as its digits) or, for lists,
 * an array of strings (joined with commas); a boolean flag takes true or false (in the
 * environment: true/false, 1/0, yes/no, on/off). An empty environment variable counts
 * as unset, the usual way to unset one for a single command (`KVSTORE_ADDRESS= kvstore`).
 *
 * A wrong value stops start-up with a message that names the setting as its source
 * spells it: `--max-value-bytes`, `KVSTORE_MAX_VALUE_BYTES`, or `max-value-bytes (from
 * kvstore.json)`. Unknown variables under the prefix and unknown config keys are not
 * errors (a newer config must not stop an older binary) but produce warnings, with the
 * closest known name when there is one, which the process logs once its logger exists.
 * A node and a router on one machine share an environment, so each leaves the other's
 * variables alone: a node neither reads nor warns about `KVSTORE_ROUTER_*`, and a router
 * reads only those.
 *
 * Pure: the environment and the file's text come in as values (the file through a
 * reader the caller passes).
 *
 * @module
 */

import { UsageError } from "./usage_error.ts";

/** A flag as the settings need it (a subset of server_flags.ts's FlagSpec). */
export interface SettingSpec {
  readonly name: string;
  readonly type: "string" | "boolean";
}

/** Values by flag name, as node:util parseArgs gives them. */
export type SettingValues = Record<string, string | boolean | undefined>;

export type SettingSourceKind = "flag" | "env" | "file";

export interface SettingSource {
  readonly kind: SettingSourceKind;
  /** How to name the setting in a message: `--data-dir`, `KVSTORE_DATA_DIR`, or
   * `data-dir (from /etc/kvstore.json)`. */
  readonly label: string;
}

export interface ConfigFileText {
  readonly path: string;
  readonly text: string;
}

export interface SettingsInput {
  readonly table: readonly SettingSpec[];
  /** Values from the command line. */
  readonly flags: SettingValues;
  /** The process environment. */
  readonly env: Readonly<Record<string, string>>;
  readonly file: ConfigFileText | null;
  /** The environment variables' prefix (default {@linkcode NODE_ENV_PREFIX}). */
  readonly envPrefix?: string;
  /** Longer prefixes that belong to another command (a node's `KVSTORE_ROUTER_`): such
   * variables are neither read nor warned about. */
  readonly foreignEnvPrefixes?: readonly string[];
  /** Flags that never come from the environment or a file (help, config). */
  readonly commandLineOnly?: readonly string[];
  /** Other variables under the prefix that are known (the client's, the config file's). */
  readonly otherEnvNames?: readonly string[];
  /** Groups of boolean flags of which one source sets one (--master, --replica): a
   * higher-precedence source's choice replaces a lower one's instead of clashing. */
  readonly exclusiveGroups?: readonly (readonly string[])[];
}

export interface ResolvedSettings {
  readonly values: SettingValues;
  /** Where each set value came from. */
  readonly sources: ReadonlyMap<string, SettingSource>;
  readonly warnings: readonly string[];
}

const PRECEDENCE: Record<SettingSourceKind, number> = { flag: 3, env: 2, file: 1 };

/** The prefix of a node's environment variables. */
export const NODE_ENV_PREFIX = "KVSTORE_";

/** The prefix of a router's: its own, so that `KVSTORE_ADDRESS` set for a node on the
 * same machine does not move the router. */
export const ROUTER_ENV_PREFIX = "KVSTORE_ROUTER_";

/** The prefix (`KVSTORE_` unless given) and the flag name in upper case with underscores. */
export function envVarName(flagName: string, prefix = NODE_ENV_PREFIX): string {
  return `${prefix}${flagName.toUpperCase().replaceAll("-", "_")}`;
}

/** Merges the sources by precedence. Throws {@linkcode UsageError} naming the setting and
 * its source when a value has the wrong type or the file is not a JSON object. */
export function resolveSettings(input: SettingsInput): ResolvedSettings {
  const commandLineOnly = new Set(input.commandLineOnly ?? []);
  const envPrefix = input.envPrefix ?? NODE_ENV_PREFIX;
  const settable = input.table.filter((spec) => !commandLineOnly.has(spec.name));
  const warnings: string[] = [];
  const layers: [SettingSourceKind, SettingValues, (name: string) => string][] = [
    [
      "file",
      input.file === null ? {} : readConfigFile(input.file, settable, commandLineOnly, warnings),
      (name) => `${name} (from ${input.file?.path})`,
    ],
    ["env", readEnv(input, settable, warnings), (name) => envVarName(name, envPrefix)],
    ["flag", input.flags, (name) => `--${name}`],
  ];

  const values: SettingValues = {};
  const sources = new Map<string, SettingSource>();
  for (const [kind, layer, label] of layers) {
    for (const [name, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      values[name] = value;
      sources.set(name, { kind, label: label(name) });
    }
  }
  for (const group of input.exclusiveGroups ?? []) {
    const chosen = group.filter((name) => values[name] === true);
    if (chosen.length < 2) continue;
    const top = Math.max(...chosen.map((name) => PRECEDENCE[sources.get(name)!.kind]));
    for (const name of chosen) {
      if (PRECEDENCE[sources.get(name)!.kind] < top) {
        delete values[name];
        sources.delete(name);
      }
    }
  }
  return { values, sources, warnings };
}

/** Where settings besides the command line come from; the defaults read nothing. */
export interface SettingsSources {
  /** The process environment (Deno.env.toObject()). */
  readonly env?: Readonly<Record<string, string>>;
  /** Reads the config file's text; throws when it cannot. */
  readonly readFile?: (path: string) => string;
}

/** What a command (the node, the router) passes to {@linkcode loadSettings}. */
export interface CommandSettingsInput {
  /** The command's flag table; its `config` flag names the config file. */
  readonly table: readonly SettingSpec[];
  /** Values from the command line. */
  readonly flags: SettingValues;
  readonly sources: SettingsSources;
  /** The environment variables' prefix; `${envPrefix}CONFIG` names the config file when
   * --config does not. */
  readonly envPrefix: string;
  readonly foreignEnvPrefixes?: readonly string[];
  readonly commandLineOnly?: readonly string[];
  readonly otherEnvNames?: readonly string[];
  readonly exclusiveGroups?: readonly (readonly string[])[];
}

export interface LoadedSettings extends ResolvedSettings {
  /** The config file read (from --config, else the environment), or null. */
  readonly configFile: string | null;
}

/**
 * Reads the config file that --config or `${envPrefix}CONFIG` names, if any, and merges
 * it with the environment and the command line by precedence (see
 * {@linkcode resolveSettings}). Throws {@linkcode UsageError} when the file cannot be read,
 * naming the file and the setting that named it.
 */
export function loadSettings(input: CommandSettingsInput): LoadedSettings {
  const env = input.sources.env ?? {};
  const configVariable = envVarName("config", input.envPrefix);
  const fromFlag = input.flags.config as string | undefined;
  const configFile = fromFlag ?? (env[configVariable] || undefined) ?? null;
  let file: ConfigFileText | null = null;
  if (configFile !== null) {
    const source = fromFlag !== undefined ? "--config" : configVariable;
    const readFile = input.sources.readFile;
    if (readFile === undefined) throw new UsageError(`${source}: config files cannot be read here`);
    try {
      file = { path: configFile, text: readFile(configFile) };
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      throw new UsageError(`Cannot read config file ${JSON.stringify(configFile)} (${source}): ${detail}`);
    }
  }
  const settings = resolveSettings({
    table: input.table,
    flags: input.flags,
    env,
    file,
    envPrefix: input.envPrefix,
    foreignEnvPrefixes: input.foreignEnvPrefixes,
    commandLineOnly: input.commandLineOnly,
    otherEnvNames: [configVariable, ...(input.otherEnvNames ?? [])],
    exclusiveGroups: input.exclusiveGroups,
  });
  return { ...settings, configFile };
}

/** Runs `build` (checks written in terms of `--flags`) and rethrows its UsageError with
 * each setting named as its source spells it (see {@linkcode nameSources}). */
export function withSourceNames<T>(sources: ReadonlyMap<string, SettingSource>, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(nameSources(error.message, sources));
    throw error;
  }
}

/** Rewrites a message about `--flag` to name the setting as its actual source spells
 * it, so a check written in terms of flags reports an environment variable or a config
 * key correctly. */
export function nameSources(message: string, sources: ReadonlyMap<string, SettingSource>): string {
  let result = message;
  for (const [name, source] of sources) {
    if (source.kind === "flag") continue;
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    result = result.replace(new RegExp(`--${escaped}(?![A-Za-z0-9-])`, "g"), source.label);
  }
  return result;
}

function readEnv(input: SettingsInput, table: readonly SettingSpec[], warnings: string[]): SettingValues {
  const prefix = input.envPrefix ?? NODE_ENV_PREFIX;
  const foreign = input.foreignEnvPrefixes ?? [];
  const otherNames = input.otherEnvNames ?? [];
  const byEnvName = new Map(table.map((spec) => [envVarName(spec.name, prefix), spec]));
  const values: SettingValues = {};
  for (const [variable, text] of Object.entries(input.env)) {
    if (!variable.startsWith(prefix) || foreign.some((other) => variable.startsWith(other))) continue;
    const spec = byEnvName.get(variable);
    if (spec === undefined) {
      if (!otherNames.includes(variable)) {
        warnings.push(
          `Ignoring unknown environment variable ${variable}${suggest(variable, [...byEnvName.keys(), ...otherNames])}`,
        );
      }
      continue;
    }
    if (text === "") continue;
    values[spec.name] = spec.type === "boolean" ? parseEnvBoolean(variable, text) : text;
  }
  return values;
}

function parseEnvBoolean(variable: string, text: string): boolean {
  const word = text.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(word)) return true;
  if (["false", "0", "no", "off"].includes(word)) return false;
  throw new UsageError(`Invalid ${variable} ${JSON.stringify(text)}: expected true or false`);
}

function readConfigFile(
  file: ConfigFileText,
  table: readonly SettingSpec[],
  commandLineOnly: ReadonlySet<string>,
  warnings: string[],
): SettingValues {
  let parsed: unknown;
  try {
    parsed = JSON.parse(file.text);
  } catch (error) {
    throw new UsageError(
      `Cannot read config file ${file.path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`Cannot read config file ${file.path}: expected a JSON object of settings`);
  }
  const byName = new Map(table.map((spec) => [spec.name, spec]));
  const values: SettingValues = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const spec = byName.get(key);
    if (spec === undefined) {
      const why = commandLineOnly.has(key) ? " (it is only accepted on the command line)" : "";
      warnings.push(
        `Ignoring unknown setting ${JSON.stringify(key)} in ${file.path}${why}${suggest(key, [...byName.keys()])}`,
      );
      continue;
    }
    if (value === null) continue;
    values[key] = fileValue(spec, value, `${key} (from ${file.path})`);
  }
  return values;
}

function fileValue(spec: SettingSpec, value: unknown, label: string): string | boolean {
  if (spec.type === "boolean") {
    if (typeof value === "boolean") return value;
    throw new UsageError(`Invalid ${label} ${JSON.stringify(value)}: expected true or false`);
  }
  if (typeof value === "string") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (Array.isArray(value) && value.every((item) => typeof item === "string")) return value.join(",");
  throw new UsageError(`Invalid ${label} ${JSON.stringify(value)}: expected a string, a number or a list of strings`);
}

/** ` (did you mean X?)` when a known name is within a small edit distance. */
function suggest(name: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 4))
    ? ` (did you mean ${best}?)`
    : "";
}

/** Levenshtein distance; names are short, so the quadratic cost is nothing. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
