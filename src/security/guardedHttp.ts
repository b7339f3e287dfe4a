/**
 * An HTTP request under the outbound policy, on node:http(s).
 *
 * The host name is resolved once, every address it resolves to is checked, and
 * the socket connects to the checked address (the `lookup` hook), so a DNS
 * answer cannot change between the check and the connection (no rebinding);
 * the request keeps the original Host header and TLS server name. Redirects
 * are followed here, by hand, so every hop's URL and address is checked the
 * same way before a byte is sent to it.
 */
import type { LookupAddress } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { StepError } from '../errors.js';
import { checkAddress, checkUrl, DestinationDeniedError, type OutboundPolicy } from './outboundPolicy.js';

export interface GuardedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
  /** Read a response body only up to this many bytes; a larger one drops the connection and fails with OUTPUT_TOO_LARGE. */
  maxBytes?: number;
  /**
   * Name resolution; default: the system's (dns.lookup, as any Node client).
   * Called once per new connection, whose socket then goes to what it returned.
   */
  resolve?: Resolver;
}

/** Every address a host name resolves to (`family` 0: both). */
export type Resolver = (hostname: string, family: number) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname, family) => dnsLookup(hostname, { all: true, family });

export interface GuardedResponse {
  status: number;
  contentType: string;
  text: string;
  /** The URL that answered, after redirects. */
  url: string;
}

const MAX_REDIRECTS = 20;
/** Headers that must not follow a redirect to another origin (as fetch does). */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

/**
 * Keep-alive agents per policy: every pooled socket was opened through this
 * policy's checking lookup, and a reused socket skips the lookup, so a socket
 * opened where a policy allowed a name must never serve a stricter one.
 */
const agentsByPolicy = new WeakMap<OutboundPolicy, { 'http:': http.Agent; 'https:': https.Agent }>();
function agentsOf(policy: OutboundPolicy) {
  let agents = agentsByPolicy.get(policy);
  if (!agents) agentsByPolicy.set(policy, (agents = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) }));
  return agents;
}

export async function guardedRequest(policy: OutboundPolicy, req: GuardedRequest): Promise<GuardedResponse> {
  let url = checkUrl(policy, req.url);
  let { method, body } = req;
  let headers = { ...req.headers };
  for (let hop = 0; ; hop++) {
    const res = await send(policy, url, method, headers, body, req.signal, req.maxBytes, `${req.method} ${req.url}`, req.resolve ?? systemResolver);
    const location = res.location;
    if (!location || ![301, 302, 303, 307, 308].includes(res.status)) return { status: res.status, contentType: res.contentType, text: res.text, url: url.href };
    if (hop >= MAX_REDIRECTS) throw new StepError('HTTP_TOO_MANY_REDIRECTS', `${req.method} ${req.url}: more than ${MAX_REDIRECTS} redirects`, { retryable: false });
    const next = checkUrl(policy, new URL(location, url));
    if (next.origin !== url.origin) headers = dropHeaders(headers, CREDENTIAL_HEADERS);
    // 303, and 301/302 after a POST, turn into a GET without a body (fetch's rule).
    if (res.status === 303 ? method !== 'HEAD' : (res.status === 301 || res.status === 302) && method === 'POST') {
      method = 'GET';
      body = undefined;
      headers = dropHeaders(headers, ['content-type', 'content-length']);
    }
    url = next;
  }
}

interface RawResponse { status: number; contentType: string; text: string; location?: string }

function send(policy: OutboundPolicy, url: URL, method: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal, maxBytes: number | undefined, what: string, resolver: Resolver): Promise<RawResponse> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let denied: unknown;
    const lookup: LookupFunction = (hostname, options, callback) => {
      resolver(hostname, options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0)).then((addresses) => {
        try {
          // Every address must pass: a name that also resolves to a private address is refused.
          if (addresses.length === 0) throw Object.assign(new Error(`${hostname}: no address`), { code: 'ENOTFOUND' });
          for (const a of addresses) checkAddress(policy, hostname, a.address);
        } catch (e) {
          if (e instanceof DestinationDeniedError) denied = e;
          return callback(e as NodeJS.ErrnoException, '', 0);
        }
        // The socket connects to exactly the addresses checked here: no second lookup happens.
        if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
        callback(null, addresses[0].address, addresses[0].family);
      }, (err: NodeJS.ErrnoException) => callback(err, '', 0));
    };
    const request = client.request(url, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      agent: agentsOf(policy)[url.protocol as 'http:' | 'https:'],
      lookup,
      signal,
    }, (res) => {
      const chunks: Buffer[] = [];
      let total = 0;
      const tooLarge = (bytes?: number) => {
        res.destroy(); // not downloaded to the end
        reject(new StepError('OUTPUT_TOO_LARGE', `${what}: the response body is ${bytes === undefined ? 'larger than' : `${bytes} bytes, over`} the limit of ${maxBytes} bytes (SMARTSPEC_PAYLOAD_MAX_BYTES)`, {
          details: { maxBytes, ...(bytes !== undefined ? { bytes } : {}) },
        }));
      };
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (maxBytes !== undefined && declared > maxBytes) return tooLarge(declared);
      res.on('data', (c: Buffer) => {
        total += c.byteLength;
        if (maxBytes !== undefined && total > maxBytes) return tooLarge();
        chunks.push(c);
      });
      res.on('error', reject);
      res.on('end', () => resolve({
        status: res.statusCode ?? 0,
        contentType: String(res.headers['content-type'] ?? ''),
        text: Buffer.concat(chunks).toString('utf8'),
        ...(res.headers.location ? { location: res.headers.location } : {}),
      }));
    });
    request.on('error', (err) => reject(denied instanceof DestinationDeniedError ? denied : err));
    request.end(body);
  });
}

function dropHeaders(headers: Record<string, string>, names: string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !names.includes(k.toLowerCase())));
}
