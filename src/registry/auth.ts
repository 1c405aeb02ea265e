/**
 * Registry authentication: parsing `WWW-Authenticate` challenges and caching Bearer tokens per
 * scope. The client does the HTTP; this module holds the state.
 * @module
 */

/** One parsed challenge. */
export interface AuthChallenge {
  /** Lowercase scheme: `basic`, `bearer`, … */
  scheme: string;
  /** Parameters (realm, service, scope, error …). */
  params: Record<string, string>;
}

/** Parse a `WWW-Authenticate` header value (one or more challenges). */
export function parseChallenges(header: string | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  const out: AuthChallenge[] = [];
  let cur: AuthChallenge | undefined;
  let i = 0;
  const n = header.length;
  const skip = (): void => {
    while (i < n && /[\s,]/.test(header[i] as string)) i++;
  };
  while (i < n) {
    skip();
    const m = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(header.slice(i));
    if (!m) break;
    const tok = m[0];
    i += tok.length;
    let j = i;
    while (j < n && header[j] === ' ') j++;
    if (header[j] === '=' && cur) {
      i = j + 1;
      while (i < n && header[i] === ' ') i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const v = /^[^\s,]*/.exec(header.slice(i))?.[0] ?? '';
        value = v;
        i += v.length;
      }
      cur.params[tok.toLowerCase()] = value;
    } else {
      cur = { scheme: tok.toLowerCase(), params: {} };
      out.push(cur);
    }
  }
  return out;
}

/** Scope string of a repository: `repository:<repo>:pull` or `:pull,push`. */
export function repoScope(repo: string, push: boolean): string {
  return `repository:${repo}:${push ? 'pull,push' : 'pull'}`;
}

interface CachedToken {
  token: string;
  /** ms since epoch after which the token is not used. */
  expiresAt: number;
}

/** Bearer tokens per scope, with expiry. */
export class TokenCache {
  readonly #tokens = new Map<string, CachedToken>();

  get(scope: string, now = Date.now()): string | undefined {
    const t = this.#tokens.get(scope);
    if (!t) return undefined;
    if (now >= t.expiresAt) {
      this.#tokens.delete(scope);
      return undefined;
    }
    return t.token;
  }

  /** Store `token`, valid for `expiresInS` seconds (default 60, as the distribution spec says), minus a margin. */
  set(scope: string, token: string, expiresInS: number | undefined, now = Date.now()): void {
    const life = Math.max(1, expiresInS ?? 60);
    this.#tokens.set(scope, { token, expiresAt: now + life * 1000 - Math.min(10_000, life * 100) });
  }

  delete(scope: string): void {
    this.#tokens.delete(scope);
  }

  clear(): void {
    this.#tokens.clear();
  }
}
