/**
 * The one logger: every line kvstore prints about itself goes through here.
 *
 * One line per event. Text lines read left to right as time, level, subsystem, what
 * happened, then `key=value` details:
 *
 *   2026-11-25T15:31:00.123Z INFO  server: Listening on 127.0.0.1:50051 role=master
 *
 * JSON lines carry the same fields as an object, for log shippers:
 *
 *   {"ts":"2026-11-25T15:31:00.123Z","level":"info","component":"server","msg":"Listening on ...","role":"master"}
 *
 * The sink is injected, so the logger itself does no I/O and tests can read what it wrote.
 *
 * @module
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = typeof LOG_LEVELS[number];

export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = typeof LOG_FORMATS[number];

/** Details attached to a log line. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Receives each finished line, without its newline. */
  sink: (line: string) => void;
  clock?: () => number;
}

const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export class Logger {
  readonly component: string;
  #options: LoggerOptions;

  constructor(options: LoggerOptions, component = "kvstore") {
    this.#options = options;
    this.component = component;
  }

  /** A logger for a subsystem, sharing this one's level, format and sink. */
  child(component: string): Logger {
    return new Logger(this.#options, component);
  }

  debug(message: string, fields?: LogFields): void {
    this.#write("debug", message, fields);
  }

  info(message: string, fields?: LogFields): void {
    this.#write("info", message, fields);
  }

  warn(message: string, fields?: LogFields): void {
    this.#write("warn", message, fields);
  }

  error(message: string, fields?: LogFields): void {
    this.#write("error", message, fields);
  }

  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= LEVEL_RANK[this.#options.level];
  }

  #write(level: LogLevel, message: string, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return;
    const ts = new Date((this.#options.clock ?? Date.now)()).toISOString();
    if (this.#options.format === "json") {
      // A detail named like one of the line's own keys must not replace it: it is kept
      // under its name with a leading underscore.
      const line: Record<string, unknown> = { ts, level, component: this.component, msg: message };
      for (const [key, value] of Object.entries(fields ?? {})) line[key in line ? `_${key}` : key] = value;
      this.#options.sink(JSON.stringify(line));
      return;
    }
    // One event, one line: a message with a line break in it (an error from elsewhere)
    // must not start a line a reader would take for another event; nor may any other
    // control character in it (a client's bytes quoted in a message) reach a terminal
    // that would act on it.
    let line = `${ts} ${level.toUpperCase().padEnd(5)} ${this.component}: ${escapeControls(message)}`;
    for (const [key, value] of Object.entries(fields ?? {})) {
      if (value === undefined) continue;
      line += ` ${key}=${formatValue(value)}`;
    }
    this.#options.sink(line);
  }
}

function formatValue(value: string | number | boolean | null): string {
  if (typeof value !== "string") return String(value);
  return /^[^\s"=\p{Cc}]+$/u.test(value) ? value : escapeC1(JSON.stringify(value));
}

/** Control characters (C0, DEL, C1) but the tab written as escapes, a line break as \n. */
function escapeControls(text: string): string {
  return text.replace(/\r?\n/g, "\\n").replace(/(?!\t)\p{Cc}/gu, hexEscape);
}

/** DEL and the C1 controls, which JSON.stringify leaves as they are, as escapes. */
function escapeC1(text: string): string {
  return text.replace(/[\x7f-\x9f]/g, hexEscape);
}

function hexEscape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** A logger that discards everything; for tests and library use. */
export function silentLogger(): Logger {
  return new Logger({ level: "error", format: "text", sink: () => {} });
}
