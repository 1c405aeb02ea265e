/**
 * Validation of a backend's JSON config (`device.backend.config`): typed field readers whose
 * errors name the field (`UsageError` `ERR_BAD_CONFIG`).
 * @module
 */
import { UsageError } from '../../util/errors.js';
import type { Logger } from '../../util/logger.js';

/** A config object being read; `where` prefixes field names in messages. */
export class ConfigFields {
  readonly #obj: Record<string, unknown>;
  readonly #where: string;
  readonly #used = new Set<string>();

  constructor(obj: unknown, where: string) {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new UsageError('ERR_BAD_CONFIG', `Cannot use backend config: ${where} must be an object`);
    }
    this.#obj = obj as Record<string, unknown>;
    this.#where = where;
  }

  #bad(key: string, want: string): UsageError {
    const v = this.#obj[key];
    return new UsageError('ERR_BAD_CONFIG', `Cannot use backend config: ${this.#where}.${key} must be ${want}, got ${JSON.stringify(v) ?? String(v)}`);
  }

  #get(key: string): unknown {
    this.#used.add(key);
    const v = this.#obj[key];
    return v === null ? undefined : v;
  }

  /** An optional string (empty strings count as absent when `emptyIsAbsent`). */
  string(key: string, opts: { emptyIsAbsent?: boolean } = {}): string | undefined {
    const v = this.#get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.#bad(key, 'a string');
    if (v === '' && opts.emptyIsAbsent) return undefined;
    return v;
  }

  /** A required non-empty string. */
  requiredString(key: string): string {
    const v = this.string(key);
    if (v === undefined || v === '') {
      throw new UsageError('ERR_BAD_CONFIG', `Cannot use backend config: ${this.#where}.${key} is required`);
    }
    return v;
  }

  /** An optional number within [min, max], integral when `integer`. */
  number(key: string, opts: { min: number; max: number; integer?: boolean }): number | undefined {
    const v = this.#get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < opts.min || v > opts.max || (opts.integer === true && !Number.isInteger(v))) {
      throw this.#bad(key, `${opts.integer ? 'an integer' : 'a number'} in ${opts.min}..${opts.max}`);
    }
    return v;
  }

  /** An optional boolean. */
  boolean(key: string): boolean | undefined {
    const v = this.#get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw this.#bad(key, 'true or false');
    return v;
  }

  /** An optional array of non-empty strings. */
  stringArray(key: string): string[] | undefined {
    const v = this.#get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === '')) throw this.#bad(key, 'an array of non-empty strings');
    return v as string[];
  }

  /** Warn about keys nobody read (nydusd ignores unknown keys too). */
  warnUnknown(logger: Logger): void {
    for (const k of Object.keys(this.#obj)) {
      if (!this.#used.has(k)) logger.warn(`ignoring unknown backend config field ${this.#where}.${k}`, { field: `${this.#where}.${k}` });
    }
  }
}
