/**
 * Where `http` steps may connect. A definition chooses the URL, so without a
 * policy any submitter could make a worker call its own loopback, the cloud
 * metadata service (169.254.169.254) or the private network behind it.
 *
 * Only http and https; and only addresses in the public unicast ranges, as
 * ipaddr.js classifies them: loopback, 0.0.0.0/8, RFC 1918, 100.64/10,
 * link-local, unique-local, multicast, reserved, NAT64/6to4/Teredo (which can
 * embed any IPv4 address) are refused, IPv4-mapped IPv6 forms included.
 * `HTTP_STEP_ALLOW` (hosts, IPs and CIDRs, comma separated) opens exceptions.
 * Pure: the DNS lookup that feeds `checkAddress` lives in guardedHttp.ts.
 */
import ipaddr from 'ipaddr.js';
import { SmartSpecError, StepError } from '../errors.js';

export const ALLOW_VARIABLE = 'HTTP_STEP_ALLOW';
const SCHEMES = new Set(['http:', 'https:']);
const HOSTNAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$/i;
/** IPv4-compatible IPv6 (`::127.0.0.1`, deprecated) is "unicast" to ipaddr.js but may reach IPv4 space. */
const IPV4_COMPATIBLE = ipaddr.parseCIDR('::/96');

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** A refused destination: fails the step, never retried (the same URL is refused again). */
export class DestinationDeniedError extends StepError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('HTTP_DESTINATION_DENIED', `${message} (outbound policy; ${ALLOW_VARIABLE} lists exceptions)`, { retryable: false, details });
  }
}

export class OutboundConfigError extends SmartSpecError {
  constructor(message: string) {
    super('INVALID_CONFIG', `invalid environment: ${ALLOW_VARIABLE}: ${message}`, { details: { issues: [{ variable: ALLOW_VARIABLE, message }] } });
  }
}

export interface OutboundPolicy {
  /** Hostnames allowed whatever they resolve to (lower case, no trailing dot). */
  readonly hosts: ReadonlySet<string>;
  /** Address ranges allowed (a single IP is a /32 or /128). */
  readonly ranges: readonly [Address, number][];
}

/** Parse `HTTP_STEP_ALLOW`: `host, 10.0.0.0/8, 127.0.0.1, ::1, [::1]`. Throws naming the bad entry. */
export function parseAllowList(raw: string | undefined): OutboundPolicy {
  const hosts = new Set<string>();
  const ranges: [Address, number][] = [];
  for (const entry of (raw ?? '').split(',').map((e) => e.trim()).filter(Boolean)) {
    const bare = entry.replace(/^\[(.*)\]$/, '$1');
    if (/^[0-9a-f.:]+\/\d+$/i.test(bare)) {
      try {
        const [addr, bits] = ipaddr.parseCIDR(bare);
        ranges.push([normalize(addr), addr.kind() === 'ipv6' && normalize(addr).kind() === 'ipv4' ? Math.max(0, bits - 96) : bits]);
      } catch {
        throw new OutboundConfigError(`'${entry}' is not a CIDR range (e.g. 10.0.0.0/8, fd00::/8)`);
      }
    } else if (ipaddr.isValid(bare)) {
      const addr = normalize(ipaddr.parse(bare));
      ranges.push([addr, addr.kind() === 'ipv4' ? 32 : 128]);
    } else if (HOSTNAME.test(entry)) {
      hosts.add(hostKey(entry));
    } else {
      throw new OutboundConfigError(`'${entry}' is neither a host name, an IP address nor a CIDR range`);
    }
  }
  return { hosts, ranges };
}

export function policyFromEnv(env: NodeJS.ProcessEnv = process.env): OutboundPolicy {
  return parseAllowList(env[ALLOW_VARIABLE]);
}

/**
 * Check a URL before anything is sent: the scheme, and the host when it is an
 * IP literal (the URL parser has already turned `2130706433`, `0177.0.0.1`
 * and `0x7f.1` into `127.0.0.1`). A host name is checked once resolved.
 * Returns the parsed URL.
 */
export function checkUrl(policy: OutboundPolicy, url: string | URL): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StepError('HTTP_INVALID_URL', `'${String(url)}' is not a valid URL`, { retryable: false });
  }
  if (!SCHEMES.has(parsed.protocol)) {
    throw new DestinationDeniedError(`scheme '${parsed.protocol.replace(/:$/, '')}' is refused: http steps use http or https`, { url: parsed.origin });
  }
  const host = bareHost(parsed);
  if (ipaddr.isValid(host)) checkAddress(policy, parsed.hostname, host);
  return parsed;
}

/** Refuse `address` (what `hostname` resolved to, or the literal itself) unless public or allowed. */
export function checkAddress(policy: OutboundPolicy, hostname: string, address: string): void {
  if (policy.hosts.has(hostKey(hostname.replace(/^\[(.*)\]$/, '$1')))) return;
  let addr: Address;
  try {
    addr = normalize(ipaddr.parse(address));
  } catch {
    throw new DestinationDeniedError(`'${address}' is not an IP address`, { host: hostname });
  }
  if (policy.ranges.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits))) return;
  const range = addr.range();
  const embedsIpv4 = addr.kind() === 'ipv6' && addr.match(IPV4_COMPATIBLE);
  if (range === 'unicast' && !embedsIpv4) return;
  const named = hostname.replace(/^\[(.*)\]$/, '$1') === address ? `'${address}'` : `'${hostname}' (${address})`;
  throw new DestinationDeniedError(`destination ${named} is in a ${embedsIpv4 ? 'IPv4-compatible' : range} range`, { host: hostname, address: addr.toString(), range });
}

/** IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is judged as the IPv4 address it is. */
function normalize(addr: Address): Address {
  return addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() ? (addr as ipaddr.IPv6).toIPv4Address() : addr;
}

/** The URL's host without IPv6 brackets. */
export function bareHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

const hostKey = (h: string) => h.toLowerCase().replace(/\.$/, '');
