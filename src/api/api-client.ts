/**
 * A client of nydusd's API on a unix socket (used by nydusctl and the tests).
 * @module
 */
import { request } from 'node:http';
import { NydusError } from '../util/errors.js';

/** A response: status and parsed JSON body (undefined for 204). */
export interface ApiResponse {
  status: number;
  body: unknown;
}

/** Send one request to the daemon at `socket`. */
export function apiRequest(socket: string, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: socket, method, path, headers: text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {}, timeout: timeoutMs }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(parts).toString('utf8');
        let parsed: unknown;
        try {
          parsed = raw.length > 0 ? JSON.parse(raw) : undefined;
        } catch {
          parsed = raw;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new NydusError('ERR_API_TIMEOUT', `Cannot reach nydusd at ${socket}: no answer in ${timeoutMs} ms`)));
    req.on('error', (e) => reject(e instanceof NydusError ? e : new NydusError('ERR_API_CONNECT', `Cannot reach nydusd at ${socket}: ${e.message}`, { cause: e })));
    if (text) req.write(text);
    req.end();
  });
}

/** Like apiRequest, but throws on a non-2xx status with the daemon's message. */
export async function apiCall(socket: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const r = await apiRequest(socket, method, path, body);
  if (r.status >= 300) {
    const msg = (r.body as { message?: string } | undefined)?.message ?? JSON.stringify(r.body);
    throw new NydusError('ERR_API', `nydusd answered ${r.status}: ${msg}`);
  }
  return r.body;
}
