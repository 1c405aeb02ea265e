/**
 * A Logger writing one line per record to a stream: time, level, message, then the fields as
 * JSON. Its level can be changed at run time (PUT /api/v1/daemon).
 * @module
 */
import { LOG_LEVELS, type LogLevel, type Logger } from '../util/logger.js';

/** A logger whose level is shared by its children. */
export interface LevelledLogger extends Logger {
  level: LogLevel;
}

/** Create a logger writing to `out` (default stderr). */
export function createStreamLogger(level: LogLevel, out: NodeJS.WritableStream = process.stderr): LevelledLogger {
  const state = { level };
  const make = (base: Record<string, unknown>): Logger => {
    const write = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
      if (LOG_LEVELS.indexOf(lvl) < LOG_LEVELS.indexOf(state.level)) return;
      const all = { ...base, ...fields };
      const extra = Object.keys(all).length > 0 ? ` ${JSON.stringify(all)}` : '';
      out.write(`${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} ${msg}${extra}\n`);
    };
    return {
      debug: (m, f) => write('debug', m, f),
      info: (m, f) => write('info', m, f),
      warn: (m, f) => write('warn', m, f),
      error: (m, f) => write('error', m, f),
      child: (f) => make({ ...base, ...f }),
    };
  };
  const root = make({});
  Object.defineProperty(root, 'level', { get: () => state.level, set: (l: LogLevel) => { state.level = l; }, enumerable: true });
  return root as LevelledLogger;
}
