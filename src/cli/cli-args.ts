/**
 * Command-line parsing shared by the binaries: node:util parseArgs with per-command option
 * tables, `--help` on every command, and one-line errors with a non-zero exit.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { NydusError, UsageError } from '../util/errors.js';

/** One option of a command. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** Help text. */
  help: string;
  /** Placeholder in help. */
  arg?: string;
}

/** A subcommand. */
export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  options: Record<string, OptionSpec>;
  run(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): Promise<number>;
}

/** Render help text for a command. */
export function commandHelp(tool: string, c: CommandSpec): string {
  const lines = [`${tool} ${c.name} - ${c.summary}`, '', `Usage: ${tool} ${c.usage}`, '', 'Options:'];
  for (const [name, o] of Object.entries(c.options)) {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` <${o.arg ?? 'value'}>` : ''}`;
    lines.push(`  ${flag.padEnd(34)} ${o.help}${o.default !== undefined && o.default !== false ? ` [default: ${String(o.default)}]` : ''}`);
  }
  lines.push(`  ${'-h, --help'.padEnd(34)} Print help`);
  return lines.join('\n');
}

/** Parse argv for command `c`, returning undefined when help was printed. */
export function parseCommand(tool: string, c: CommandSpec, argv: string[]): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } | undefined {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(c.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}), ...(o.default !== undefined ? { default: o.default } : {}) } as never;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError('ERR_USAGE', `${(e as Error).message.split('\n')[0]} (see '${tool} ${c.name} --help')`);
  }
  if (parsed.values.help) {
    process.stdout.write(`${commandHelp(tool, c)}\n`);
    return undefined;
  }
  return { values: parsed.values as Record<string, string | boolean | string[] | undefined>, positionals: parsed.positionals };
}

/** Run a multi-command tool: dispatch, print one-line errors, set the exit code. */
export async function runTool(tool: string, summary: string, commands: CommandSpec[], argv: string[]): Promise<void> {
  const top = `${tool} - ${summary}\n\nUsage: ${tool} <command> [options]\n\nCommands:\n${commands.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`).join('\n')}\n\nRun '${tool} <command> --help' for a command's options.`;
  const name = argv[0];
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${top}\n`);
    process.exitCode = name === undefined ? 2 : 0;
    return;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${tool} 0.1.0 (nydus-ts, RAFS v6)\n`);
    return;
  }
  const c = commands.find((x) => x.name === name);
  if (!c) {
    process.stderr.write(`${tool}: error: unknown command '${name}' (see '${tool} --help')\n`);
    process.exitCode = 2;
    return;
  }
  try {
    const p = parseCommand(tool, c, argv.slice(1));
    if (!p) return;
    process.exitCode = await c.run(p.values, p.positionals);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const code = e instanceof NydusError ? ` [${e.code}]` : '';
    process.stderr.write(`${tool}: error: ${msg}${code}\n`);
    if (process.env.NYDUS_DEBUG && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  }
}

/** A string option's value, or undefined. */
export function str(v: string | boolean | string[] | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Parse a size like 0x100000, 1048576, 1M, 4K. */
export function parseSize(s: string, what: string): number {
  const m = /^(0x[0-9a-f]+|\d+)([kmg]i?b?)?$/i.exec(s.trim());
  if (!m) throw new UsageError('ERR_USAGE', `Cannot parse ${what}: "${s}" is not a size`);
  const base = Number(m[1]);
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1 << 20 : unit === 'g' ? 1 << 30 : 1;
  return base * mult;
}

/** Read all of stdin as text (empty when stdin is a TTY). */
export async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}
