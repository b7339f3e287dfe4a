/** The outbound policy's address rules and HTTP_STEP_ALLOW parsing (pure). */
import { describe, expect, it } from 'vitest';
import { checkAddress, checkUrl, parseAllowList } from '../../../src/security/outboundPolicy.js';
import { validateDefinition } from '../../../src/definition/validate.js';

const none = parseAllowList('');
const denied = (host: string, address = host) => {
  try {
    checkAddress(none, host, address);
    return undefined;
  } catch (err) {
    return (err as { code: string }).code;
  }
};

describe('addresses', () => {
  it.each([
    '127.0.0.1', '127.255.0.9', '0.0.0.0', '0.1.2.3', '10.0.0.1', '172.16.5.4', '172.31.255.255', '192.168.1.1',
    '100.64.0.1', '100.127.255.254', '169.254.169.254', '224.0.0.1', '239.255.255.250', '255.255.255.255',
    '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1',
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '::127.0.0.1', '64:ff9b::7f00:1', '2002:7f00:1::1',
  ])('refuses %s', (a) => {
    expect(denied(a)).toBe('HTTP_DESTINATION_DENIED');
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111'])('allows the public address %s', (a) => {
    expect(denied(a)).toBeUndefined();
  });

  it.each([
    ['http://2130706433/', 'decimal'],
    ['http://0177.0.0.1/', 'octal'],
    ['http://0x7f.0.0.1/', 'hex'],
    ['http://127.1/', 'short'],
    ['http://[::ffff:127.0.0.1]/', 'IPv4-mapped'],
    ['http://[::1]:8080/', 'IPv6 loopback'],
    ['http://0.0.0.0/', 'unspecified'],
  ])('refuses %s (%s spelling) before any lookup', (url) => {
    expect(() => checkUrl(none, url)).toThrow(expect.objectContaining({ code: 'HTTP_DESTINATION_DENIED', retryable: false }));
  });

  it.each(['file:///etc/passwd', 'ftp://example.com/', 'gopher://example.com/', 'data:text/plain,x'])('refuses the scheme of %s', (url) => {
    expect(() => checkUrl(none, url)).toThrow(/scheme .* is refused/);
  });
});

describe('HTTP_STEP_ALLOW', () => {
  it('opens exactly the hosts, IPs and ranges it names', () => {
    const allow = parseAllowList(' api.internal , 127.0.0.1, 10.1.0.0/16, [::1], fd00::/8 ');
    expect(() => checkAddress(allow, 'api.internal', '10.9.9.9')).not.toThrow();
    expect(() => checkAddress(allow, 'API.internal.', '192.168.0.1')).not.toThrow();
    expect(() => checkAddress(allow, 'other.internal', '192.168.0.1')).toThrow(/HTTP_STEP_ALLOW/);
    expect(() => checkAddress(allow, '127.0.0.1', '127.0.0.1')).not.toThrow();
    expect(() => checkAddress(allow, '::ffff:127.0.0.1', '::ffff:127.0.0.1')).not.toThrow();
    expect(() => checkAddress(allow, '127.0.0.2', '127.0.0.2')).toThrow(/loopback/);
    expect(() => checkAddress(allow, 'x', '10.1.200.3')).not.toThrow();
    expect(() => checkAddress(allow, 'x', '10.2.0.1')).toThrow(/private/);
    expect(() => checkAddress(allow, '::1', '::1')).not.toThrow();
    expect(() => checkAddress(allow, 'x', 'fd00::5')).not.toThrow();
    expect(() => checkAddress(allow, 'x', 'fe80::1')).toThrow(/linkLocal/);
  });

  it('refuses an entry that is no host, IP or range, naming it and the variable', () => {
    expect(() => parseAllowList('127.0.0.1, 10.0.0.0/99')).toThrow(/HTTP_STEP_ALLOW: '10.0.0.0\/99' is not a CIDR range/);
    expect(() => parseAllowList('http://x')).toThrow(/HTTP_STEP_ALLOW: 'http:\/\/x' is neither/);
  });
});

describe('definition validation', () => {
  const http = (request: unknown) => ({ id: 'wf', steps: [{ id: 'call', type: 'http', request }] });

  it.each(['file:///etc/passwd', 'ftp://example.com/x', 'gopher://127.0.0.1:70/', 'FILE:///x{{input.p}}'])('refuses the url %s', (url) => {
    expect(() => validateDefinition(http({ url }))).toThrow(/steps\[0\]\.request\.url: scheme '.*' is refused/);
  });

  it('accepts http and https, and leaves a url that starts with a template to run time', () => {
    for (const url of ['http://example.com', 'HTTPS://example.com/{{input.p}}', '{{input.url}}']) expect(() => validateDefinition(http({ url }))).not.toThrow();
  });

  it('refuses a literal credential or an input template in an Authorization header, and accepts a secret', () => {
    expect(() => validateDefinition(http({ url: 'https://x', headers: { Authorization: 'Bearer sk-abc123' } }))).toThrow(/request\.headers\.Authorization: a literal credential/);
    expect(() => validateDefinition(http({ url: 'https://x', headers: { authorization: 'Basic {{input.token}}' } }))).toThrow(/credential from the input/);
    expect(() => validateDefinition(http({ url: 'https://x', headers: { 'proxy-authorization': 'abc{{secrets.T}}' } }))).toThrow(/literal credential/);
    expect(() => validateDefinition(http({ url: 'https://x', headers: { Authorization: 'Bearer {{secrets.TOKEN}}' } }))).not.toThrow();
    expect(() => validateDefinition(http({ url: 'https://user:hunter2@example.com/x' }))).toThrow(/request\.url: credentials written into the URL/);
    expect(() => validateDefinition(http({ url: 'https://{{secrets.USERINFO}}@example.com/x' }))).not.toThrow();
  });
});
