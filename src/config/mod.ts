/**
 * Configuration: the command line, named limits, and the parsers for flag values.
 *
 * @module
 */

export * from "./limits.ts";
export { type Address, formatAddress, parseAddress, parseAddressList } from "./address.ts";
export { UsageError } from "./usage_error.ts";
export { parseByteSize, parseChoice, parseInteger } from "./values.ts";
export {
  envVarName,
  loadSettings,
  nameSources,
  NODE_ENV_PREFIX,
  resolveSettings,
  ROUTER_ENV_PREFIX,
  type SettingsInput,
  type SettingSource,
  type SettingsSources,
  withSourceNames,
} from "./settings.ts";
export {
  DEFAULT_ADDRESS,
  type FlagSpec,
  parseFlags,
  parseServerArgs,
  type Role,
  SERVER_FLAGS,
  type ServerArgs,
  type ServerConfig,
  serverUsage,
} from "./server_flags.ts";
