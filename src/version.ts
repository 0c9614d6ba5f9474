/** The kvstore release, reported by `--version`, Info and logs. */
export const VERSION = "0.1.0";
