/**
 * Opening the bootstrap a command names: `--bootstrap`/positional path, or the bootstrap inlined
 * in `--blob` (ToC entry image.boot).
 * @module
 */
import { UsageError } from '../../util/errors.js';
import { bufferSource, fileSource } from '../../image/byte-source.js';
import { RafsImage } from '../../image/rafs-image.js';
import { readInlineBootstrap } from '../../blob/blob-toc.js';
import { str } from '../cli-args.js';

/** Open the image named by the options. */
export function openBootstrap(values: Record<string, string | boolean | string[] | undefined>, positionals: string[]): { image: RafsImage; name: string } {
  const boot = str(values.bootstrap) ?? positionals[0];
  if (boot) return { image: new RafsImage(fileSource(boot)), name: boot };
  const blob = str(values.blob);
  if (blob) {
    const src = fileSource(blob);
    try {
      return { image: new RafsImage(bufferSource(readInlineBootstrap(src), `${blob}:image.boot`)), name: `${blob}:image.boot` };
    } finally {
      src.close();
    }
  }
  throw new UsageError('ERR_USAGE', 'Cannot open image: give a bootstrap (--bootstrap) or a blob with an inline bootstrap (--blob)');
}
