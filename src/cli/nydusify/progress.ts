/**
 * Conversion progress: on a terminal, one line redrawn in place (layers, bytes, rate, ETA);
 * otherwise plain lines, one per event, for logs.
 * @module
 */

/** A conversion event (as convertImage reports it). */
export interface ProgressEvent {
  kind: 'layer-start' | 'layer-done' | 'layer-cached' | 'pushed' | 'done';
  detail: string;
  bytes?: number;
}

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** A progress sink writing to `out`. */
export function createProgress(out: NodeJS.WriteStream): (e: ProgressEvent) => void {
  if (!out.isTTY) {
    return (e) => out.write(`${e.kind.padEnd(12)} ${e.detail}${e.bytes !== undefined ? ` (${e.bytes} bytes)` : ''}\n`);
  }
  const t0 = Date.now();
  const sizes = new Map<string, number>();
  let total = 0;
  let done = 0;
  let layersDone = 0;
  let pushed = 0;
  return (e) => {
    const digest = e.detail.split(' ')[0] as string;
    if (e.kind === 'layer-start' && !sizes.has(digest)) {
      sizes.set(digest, e.bytes ?? 0);
      total += e.bytes ?? 0;
    } else if (e.kind === 'layer-done' || e.kind === 'layer-cached') {
      layersDone++;
      done += sizes.get(digest) ?? 0;
    } else if (e.kind === 'pushed') {
      pushed += e.bytes ?? 0;
    }
    const secs = (Date.now() - t0) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const eta = rate > 0 && total > done ? `${Math.ceil((total - done) / rate)} s` : '-';
    const line = e.kind === 'done'
      ? `done: ${layersDone} layers, ${mib(done)} converted, ${mib(pushed)} pushed in ${secs.toFixed(1)} s`
      : `layers ${layersDone}/${sizes.size}  ${mib(done)}/${mib(total)}  ${mib(rate)}/s  ETA ${eta}  pushed ${mib(pushed)}`;
    out.write(`\r\x1b[K${line}${e.kind === 'done' ? '\n' : ''}`);
  };
}
