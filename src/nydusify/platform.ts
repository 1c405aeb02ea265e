/**
 * Platforms as nydusify's `--platform` takes them: a comma-separated list of `os/arch[/variant]`
 * (e.g. `linux/amd64,linux/arm64/v8,linux/arm/v7`), normalised as containerd does (`x86_64` is
 * amd64, `aarch64` is arm64, arm64's default variant is v8, a bare `linux/arm` asks for any arm
 * variant), and matching against an index entry's platform.
 * @module
 */
import { UsageError } from '../util/errors.js';
import type { Platform } from './oci-types.js';

/** One platform asked for; `variant` undefined matches any variant. */
export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' };

/** An architecture's canonical name. */
function normaliseArch(arch: string): string {
  const a = arch.toLowerCase();
  return ARCH_ALIASES[a] ?? a;
}

/** A variant's canonical name for `arch` (arm64's v8 is its default and counts as none). */
function normaliseVariant(arch: string, variant: string | undefined): string | undefined {
  if (variant === undefined || variant === '') return undefined;
  const v = variant.toLowerCase();
  if (arch === 'arm64' && (v === 'v8' || v === '8')) return undefined;
  return /^\d+$/.test(v) ? `v${v}` : v;
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
    const architecture = normaliseArch(bits[1] as string);
    const variant = normaliseVariant(architecture, bits[2]);
    const spec: PlatformSpec = { os: (bits[0] as string).toLowerCase(), architecture, ...(variant === undefined ? {} : { variant }) };
    if (!out.some((s) => formatPlatform(s) === formatPlatform(spec))) out.push(spec);
  }
  return out;
}

/** Whether an index entry's platform is the one asked for (an entry without a platform is not). */
export function platformMatches(p: Platform | undefined, want: PlatformSpec): boolean {
  if (!p) return false;
  const arch = normaliseArch(p.architecture);
  if (p.os.toLowerCase() !== want.os || arch !== want.architecture) return false;
  return want.variant === undefined || normaliseVariant(arch, p.variant) === want.variant;
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Pick<Platform, 'os' | 'architecture' | 'variant'> | undefined): string {
  if (!p) return 'unknown platform';
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}
