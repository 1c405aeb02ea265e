/**
 * Platforms as nydusify's `--platform` takes them: a comma-separated list of `os/arch[/variant]`
 * (e.g. `linux/amd64,linux/arm64/v8,linux/arm/v7`), normalised as containerd does (`x86_64` is
 * amd64, `aarch64` is arm64 and its default variant v8; `arm` without a variant is arm/v7, `armhf`
 * is arm/v7, `armel` arm/v6), and matching against an index entry's platform.
 * @module
 */
import { UsageError } from '../util/errors.js';
import type { Platform } from './oci-types.js';

/** One platform asked for; `variant` undefined (not for arm) matches any variant. */
export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

/** Other names of architectures, with the variant a name implies. */
const ARCH_ALIASES: Record<string, { arch: string; variant?: string }> = {
  x86_64: { arch: 'amd64' }, 'x86-64': { arch: 'amd64' }, aarch64: { arch: 'arm64' }, i386: { arch: '386' },
  armhf: { arch: 'arm', variant: 'v7' }, armel: { arch: 'arm', variant: 'v6' },
};

/** An architecture and variant in canonical form (arm64's v8 is its default and counts as none; arm's default is v7). */
function normalise(arch: string, variant: string | undefined): { architecture: string; variant: string | undefined } {
  const alias = ARCH_ALIASES[arch.toLowerCase()];
  const architecture = alias?.arch ?? arch.toLowerCase();
  let v = variant === undefined || variant === '' ? alias?.variant : variant.toLowerCase();
  if (v !== undefined && /^\d+$/.test(v)) v = `v${v}`;
  if (architecture === 'arm64' && v === 'v8') v = undefined;
  if (architecture === 'arm' && v === undefined) v = 'v7';
  return { architecture, variant: v };
}

/**
 * Parse `--platform`'s value: `os/arch[/variant]`, several separated by commas.
 * Throws UsageError('ERR_USAGE') naming the part that is not a platform.
 */
export function parsePlatforms(text: string): PlatformSpec[] {
  const out: PlatformSpec[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    const bits = part.split('/');
    if (bits.length < 2 || bits.length > 3 || bits.some((b) => !/^[A-Za-z0-9._-]+$/.test(b))) {
      throw new UsageError('ERR_USAGE', `Cannot use --platform "${text}": "${part}" is not os/arch or os/arch/variant`);
    }
    const { architecture, variant } = normalise(bits[1] as string, bits[2]);
    const spec: PlatformSpec = { os: (bits[0] as string).toLowerCase(), architecture, ...(variant === undefined ? {} : { variant }) };
    if (!out.some((s) => formatPlatform(s) === formatPlatform(spec))) out.push(spec);
  }
  return out;
}

/** Whether an index entry's platform is the one asked for (an entry without a platform is not). */
export function platformMatches(p: Platform | undefined, want: PlatformSpec): boolean {
  if (!p) return false;
  const n = normalise(p.architecture, p.variant);
  if (p.os.toLowerCase() !== want.os || n.architecture !== want.architecture) return false;
  return want.variant === undefined || n.variant === want.variant;
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Pick<Platform, 'os' | 'architecture' | 'variant'> | undefined): string {
  if (!p) return 'unknown platform';
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
