/**
 * In-process fakes for Bearer auth: a token server and a tiny registry (blobs only, in memory)
 * demanding tokens that expire after `usesPerToken` requests, plus an optional redirect of blob
 * GETs to a second "CDN" server that records whether it saw an Authorization header.
 * @module
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';

export interface FakeRegistry {
  host: string;
  /** Token requests served, with their scope and whether basic creds were sent. */
  tokenRequests: { scope: string; service: string; basic: string | undefined }[];
  /** Registry requests: method, path, status answered. */
  requests: { method: string; path: string; status: number }[];
  /** Authorization headers the CDN saw (undefined = none). */
  cdnAuth: (string | undefined)[];
  blobs: Map<string, Uint8Array>;
  /** Redirect blob GETs to the CDN server. */
  redirect: boolean;
  close(): Promise<void>;
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function serveBlob(req: http.IncomingMessage, res: http.ServerResponse, data: Uint8Array): void {
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'content-length': data.length, 'docker-content-digest': sha(data) }).end();
    return;
  }
  if (!m) {
    res.writeHead(200, { 'content-length': data.length }).end(data);
    return;
  }
  const a = Number(m[1]);
  const b = Math.min(Number(m[2]), data.length - 1);
  if (a >= data.length) {
    res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
    return;
  }
  res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${data.length}`, 'content-length': b - a + 1 }).end(data.subarray(a, b + 1));
}

export function sha(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Start the fakes; `users` maps user → password (none: anonymous tokens). */
export async function startFakeRegistry(opts: { usesPerToken: number; users?: Record<string, string> }): Promise<FakeRegistry> {
  const tokens = new Map<string, number>();
  let serial = 0;
  const tokenSrv = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const basic = req.headers.authorization;
    fake.tokenRequests.push({ scope: u.searchParams.getAll('scope').join(' '), service: u.searchParams.get('service') ?? '', basic });
    if (opts.users) {
      const m = /^Basic (.+)$/.exec(basic ?? '');
      const [user, pass] = m ? Buffer.from(m[1] as string, 'base64').toString().split(':') : [];
      if (user === undefined || opts.users[user] !== pass) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
        return;
      }
    }
    const token = `tok-${++serial}`;
    tokens.set(token, opts.usesPerToken);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
  });
  const cdn = http.createServer((req, res) => {
    fake.cdnAuth.push(req.headers.authorization);
    const digest = (req.url ?? '').slice(1);
    const data = fake.blobs.get(digest);
    if (!data) res.writeHead(404).end();
    else serveBlob(req, res, data);
  });
  const tokenPort = await listen(tokenSrv);
  const cdnPort = await listen(cdn);
  const reg = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const answer = (status: number): void => {
      fake.requests.push({ method: req.method ?? '', path, status });
    };
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const left = m ? tokens.get(m[1] as string) : undefined;
    const repo = /^\/v2\/(.+)\/blobs\//.exec(path)?.[1] ?? '';
    if (left === undefined || left <= 0) {
      answer(401);
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="http://127.0.0.1:${tokenPort}/token",service="fake-registry",scope="repository:${repo}:pull"`,
        'content-type': 'application/json',
      }).end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    tokens.set(m?.[1] as string, left - 1);
    const bm = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
    const data = bm ? fake.blobs.get(bm[2] as string) : undefined;
    if (!bm || !data) {
      answer(404);
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}');
      return;
    }
    if (fake.redirect && req.method === 'GET') {
      answer(307);
      res.writeHead(307, { location: `http://127.0.0.1:${cdnPort}/${bm[2]}` }).end();
      return;
    }
    answer(req.headers.range && req.method === 'GET' ? 206 : 200);
    serveBlob(req, res, data);
  });
  const regPort = await listen(reg);
  const servers = [tokenSrv, cdn, reg];
  const fake: FakeRegistry = {
    host: `127.0.0.1:${regPort}`,
    tokenRequests: [], requests: [], cdnAuth: [], blobs: new Map(), redirect: false,
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((r) => {
        s.closeAllConnections();
        s.close(() => r());
      })));
    },
  };
  return fake;
}
