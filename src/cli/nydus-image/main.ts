/**
 * `nydus-image` entry point.
 * @module
 */
import { runTool } from '../cli-args.js';
import { createCommand } from './create-command.js';
import { mergeCommand } from './merge-command.js';
import { checkCommand } from './check-command.js';
import { inspectCommand } from './inspect-command.js';
import { statCommand } from './stat-command.js';
import { unpackCommand } from './unpack-command.js';
import { exportCommand } from './export-command.js';
import { optimizeCommand } from './optimize-command.js';

await runTool('nydus-image', 'build, merge, check, optimize and export Nydus RAFS v6 images', [
  createCommand, mergeCommand, checkCommand, inspectCommand, statCommand, unpackCommand, exportCommand, optimizeCommand,
], process.argv.slice(2));
