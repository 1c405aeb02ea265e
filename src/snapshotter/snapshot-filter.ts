/**
 * containerd's filter expressions over snapshots (the syntax of containerd's `filters` package),
 * as List receives them: `fieldpath[op value]` selectors joined by `,` (all must match); a list
 * of expressions matches when any of them does, and an empty list matches everything.
 *
 * - fieldpath: fields joined by `.`, each `[A-Za-z0-9_]+` or a quoted string
 *   (`labels."containerd.io/snapshot.ref"`); the fields are `name`, `parent`, `kind`
 *   (`active` | `view` | `committed`) and `labels.<key>` (the rest of the path, joined by `.`);
 * - op: `==`, `!=`, `~=` (regular expression); without op and value, the field must be present;
 * - value: a double-quoted string with Go escapes, or anything up to the next `,` or space;
 *   after `~=` also `/…/` or `|…|`.
 * @module
 */
import { SnapshotError } from './snapshot-error.js';
import type { SnapshotInfo } from './snapshot-types.js';

/** One selector. */
interface Selector {
  path: string[];
  op: 'present' | '==' | '!=' | '~=';
  value: string;
  re?: RegExp;
}

/** A compiled filter: true when a snapshot matches. */
export type SnapshotFilter = (info: SnapshotInfo) => boolean;

const QUOTES = new Set(['"', '/', '|']);
const FIELD = /[A-Za-z0-9_]/;
const ESCAPES: Readonly<Record<string, string>> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

function bad(expr: string, pos: number, why: string): SnapshotError {
  return new SnapshotError('ERR_SNAPSHOT_ARGUMENT', `Cannot parse filter ${JSON.stringify(expr)}: ${why} at offset ${pos}`);
}

/** A cursor over one filter expression. */
class FilterScanner {
  readonly #s: string;
  pos = 0;

  constructor(s: string) {
    this.#s = s;
  }

  get input(): string {
    return this.#s;
  }

  peek(): string | undefined {
    return this.#s[this.pos];
  }

  skipSpace(): void {
    while (this.pos < this.#s.length && /\s/.test(this.#s[this.pos] as string)) this.pos++;
  }

  /** A quoted literal starting at the current quote character, unescaped. */
  quoted(): string {
    const quote = this.#s[this.pos++] as string;
    let out = '';
    for (;;) {
      const ch = this.#s[this.pos++];
      if (ch === undefined || ch === '\n') throw bad(this.#s, this.pos, 'quoted literal not terminated');
      if (ch === quote) return out;
      if (ch !== '\\') {
        out += ch;
        continue;
      }
      const e = this.#s[this.pos++];
      if (e === undefined) throw bad(this.#s, this.pos, 'quoted literal not terminated');
      if (e === quote) out += quote;
      else if (ESCAPES[e] !== undefined) out += ESCAPES[e];
      else if (/[0-7]/.test(e)) out += this.#digits(e, 8, 3);
      else if (e === 'x') out += this.#digits('', 16, 2);
      else if (e === 'u') out += this.#digits('', 16, 4);
      else if (e === 'U') out += this.#digits('', 16, 8);
      else throw bad(this.#s, this.pos, 'illegal escape sequence');
    }
  }

  #digits(first: string, base: number, n: number): string {
    let text = first;
    while (text.length < n) text += this.#s[this.pos++] ?? '';
    const re = base === 8 ? /^[0-7]+$/ : /^[0-9a-fA-F]+$/;
    if (!re.test(text) || text.length !== n) throw bad(this.#s, this.pos, 'illegal numeric escape sequence');
    return String.fromCodePoint(parseInt(text, base));
  }

  field(): string {
    const ch = this.peek();
    if (ch === '"') return this.quoted();
    const start = this.pos;
    while (this.pos < this.#s.length && FIELD.test(this.#s[this.pos] as string)) this.pos++;
    if (this.pos === start) throw bad(this.#s, this.pos, 'expected a field name');
    return this.#s.slice(start, this.pos);
  }

  operator(): Selector['op'] {
    const op = this.#s.slice(this.pos, this.pos + 2);
    if (op !== '==' && op !== '!=' && op !== '~=') throw bad(this.#s, this.pos, 'expected ==, != or ~=');
    this.pos += 2;
    return op;
  }

  value(regex: boolean): string {
    const ch = this.peek();
    if (ch !== undefined && QUOTES.has(ch)) {
      if (ch !== '"' && !regex) throw bad(this.#s, this.pos, `quote ${ch} is only allowed after ~=`);
      return this.quoted();
    }
    const start = this.pos;
    while (this.pos < this.#s.length && !/[\s,]/.test(this.#s[this.pos] as string)) this.pos++;
    if (this.pos === start) throw bad(this.#s, this.pos, 'expected a value');
    return this.#s.slice(start, this.pos);
  }
}

function parseSelector(sc: FilterScanner): Selector {
  sc.skipSpace();
  const path = [sc.field()];
  while (sc.peek() === '.') {
    sc.pos++;
    path.push(sc.field());
  }
  sc.skipSpace();
  const next = sc.peek();
  if (next === undefined || next === ',') return { path, op: 'present', value: '' };
  const op = sc.operator();
  sc.skipSpace();
  const value = sc.value(op === '~=');
  if (op !== '~=') return { path, op, value };
  let re: RegExp;
  try {
    re = new RegExp(value);
  } catch (e) {
    throw bad(sc.input, sc.pos, `bad regular expression ${JSON.stringify(value)} (${(e as Error).message})`);
  }
  return { path, op, value, re };
}

/** Parse one expression into its selectors (all must match). */
export function parseFilterExpression(expr: string): ReadonlyArray<Readonly<Selector>> {
  const sc = new FilterScanner(expr);
  const out: Selector[] = [];
  sc.skipSpace();
  if (sc.peek() === undefined) return out;
  for (;;) {
    out.push(parseSelector(sc));
    sc.skipSpace();
    const ch = sc.peek();
    if (ch === undefined) return out;
    if (ch !== ',') throw bad(expr, sc.pos, `unexpected input ${JSON.stringify(ch)}`);
    sc.pos++;
  }
}

/** The value of a field path for a snapshot, undefined when absent. */
function fieldOf(info: SnapshotInfo, path: readonly string[]): string | undefined {
  switch (path[0]) {
    case 'name': return path.length === 1 ? info.name : undefined;
    case 'parent': return path.length === 1 ? info.parent : undefined;
    case 'kind': return path.length === 1 ? info.kind : undefined;
    case 'labels': return path.length > 1 ? info.labels[path.slice(1).join('.')] : undefined;
    default: return undefined;
  }
}

function matches(s: Readonly<Selector>, info: SnapshotInfo): boolean {
  const v = fieldOf(info, s.path);
  switch (s.op) {
    case 'present': return v !== undefined;
    case '==': return v === s.value;
    case '!=': return v !== s.value;
    case '~=': return s.re?.test(v ?? '') ?? false;
  }
}

/**
 * Compile List's filter expressions: a snapshot is listed when it matches any expression; with no
 * expressions (or only empty ones) everything matches. Throws ERR_SNAPSHOT_ARGUMENT on bad syntax.
 */
export function compileFilters(exprs: readonly string[]): SnapshotFilter {
  if (exprs.length === 0 || exprs.some((e) => e.trim() === '')) return () => true;
  const all = exprs.map(parseFilterExpression);
  return (info) => all.some((sels) => sels.every((s) => matches(s, info)));
}
