/**
 * NATS over TLS with client certificates and an NKEY user, and token auth, on
 * real nats-servers. The certificates are a throwaway CA made with openssl.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../../src/nats/connect.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';

let tmp: string;
let tlsServer: NatsServer;
let tokenServer: NatsServer;
const user = nkeys.createUser();
const seed = new TextDecoder().decode(user.getSeed());
const connections: NatsConnection[] = [];
const path = (name: string) => join(tmp, name);

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
function makeCertificates(): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: tmp, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=smartspec test CA');
  for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'], ['client', 'extendedKeyUsage=clientAuth']]) {
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=smartspec ${name}`);
    execFileSync('sh', ['-c', `printf '${ext}\n' > ${name}.ext`], { cwd: tmp });
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`);
  }
  // A second CA, that signed nothing the server shows.
  openssl('req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '1', '-subj', '/CN=another CA');
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-natstls-'));
  makeCertificates();
  await writeFile(path('tls.conf'), `
tls {
  cert_file: "${path('server.pem')}"
  key_file: "${path('server.key')}"
  ca_file: "${path('ca.pem')}"
  verify: true
}
authorization { users: [ { nkey: ${user.getPublicKey()} } ] }
jetstream {}
`);
  await writeFile(path('token.conf'), 'authorization { token: "s3cret-token" }\njetstream {}\n');
  [tlsServer, tokenServer] = await Promise.all([
    startNatsServer({ storeDir: path('tls-store'), configFile: path('tls.conf') }),
    startNatsServer({ storeDir: path('token-store'), configFile: path('token.conf') }),
  ]);
});

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => undefined);
  await Promise.all([tlsServer?.stop(), tokenServer?.stop()]);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function connects(url: string, env: NodeJS.ProcessEnv): Promise<void> {
  const nc = await connectNats(url, 'tls-test', env);
  connections.push(nc);
  await nc.flush();
  expect(nc.info?.jetstream).toBe(true);
}

const refusal = (url: string, env: NodeJS.ProcessEnv) => connectNats(url, 'tls-test', env).then((nc) => { connections.push(nc); throw new Error('connected'); }, (e: Error) => e);

describe('TLS with client certificates and an NKEY user', () => {
  const tls = () => ({ NATS_TLS_CA: path('ca.pem'), NATS_TLS_CERT: path('client.pem'), NATS_TLS_KEY: path('client.key') });

  it('the CA, a client certificate and the user seed (inline or from a file): connected', async () => {
    await connects(tlsServer.url, { ...tls(), NATS_NKEY_SEED: seed });
    await writeFile(path('user.nk'), seed + '\n');
    await connects(tlsServer.url, { ...tls(), NATS_NKEY_SEED_FILE: path('user.nk') });
  });

  it('another user seed is refused, naming NATS_NKEY_SEED', async () => {
    const err = await refusal(tlsServer.url, { ...tls(), NATS_NKEY_SEED: new TextDecoder().decode(nkeys.createUser().getSeed()) });
    expect(err).toMatchObject({ code: 'NATS_AUTH_FAILED' });
    expect(err.message).toMatch(/refused the credentials from NATS_NKEY_SEED/);
  });

  it('no NATS_TLS_CA: the server certificate is not trusted, and the error says to set NATS_TLS_CA', async () => {
    const err = await refusal(tlsServer.url, { NATS_NKEY_SEED: seed });
    expect(err).toMatchObject({ code: 'NATS_AUTH_FAILED' });
    expect(err.message).toMatch(/TLS to NATS failed .*set NATS_TLS_CA/);
  });

  it('a CA that did not sign the server certificate: refused, naming the TLS variables used', async () => {
    const err = await refusal(tlsServer.url, { ...tls(), NATS_TLS_CA: path('other-ca.pem'), NATS_NKEY_SEED: seed });
    expect(err).toMatchObject({ code: 'NATS_AUTH_FAILED' });
    expect(err.message).toMatch(/TLS to NATS failed with NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY/);
  });

  it('no client certificate when the server asks for one: refused, and the error says to set NATS_TLS_CERT and NATS_TLS_KEY', async () => {
    const err = await refusal(tlsServer.url, { NATS_TLS_CA: path('ca.pem'), NATS_NKEY_SEED: seed });
    expect(err).toMatchObject({ code: 'NATS_AUTH_FAILED' });
    expect(err.message).toMatch(/set NATS_TLS_CERT and NATS_TLS_KEY/);
  });
});

describe('token auth', () => {
  it('the right NATS_TOKEN connects; a wrong one is refused naming NATS_TOKEN; none is refused', async () => {
    await connects(tokenServer.url, { NATS_TOKEN: 's3cret-token' });
    const wrong = await refusal(tokenServer.url, { NATS_TOKEN: 'guess' });
    expect(wrong).toMatchObject({ code: 'NATS_AUTH_FAILED' });
    expect(wrong.message).toMatch(/refused the credentials from NATS_TOKEN/);
    expect(await refusal(tokenServer.url, {})).toMatchObject({ code: 'NATS_AUTH_FAILED' });
  });
});
