/**
 * The Logger interface library code receives (it never writes to the console itself).
 * @module
 */

/** Log levels, most verbose first. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

/** One log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Structured logger: a message plus fields. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger adding `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

/** Type guard for level names. */
export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/** A logger that drops everything. */
export const nullLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child() { return nullLogger; },
};
