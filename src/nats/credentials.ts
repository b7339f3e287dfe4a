/**
 * NATS credentials and TLS from the environment (README, "NATS credentials").
 * Everything is read and checked once, at start: an unreadable file or a
 * malformed seed fails naming its variable, rather than as a vague refusal on
 * the first connection attempt.
 */
import { readFileSync } from 'node:fs';
import {
  AuthorizationError,
  PermissionViolationError,
  credsAuthenticator,
  nkeyAuthenticator,
  nkeys,
  type Authenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node';
import { SmartSpecError } from '../errors.js';

/** Every variable this module reads, for error messages and for "is anything set?". */
export const NATS_AUTH_VARIABLES = [
  'NATS_USER',
  'NATS_PASSWORD',
  'NATS_TOKEN',
  'NATS_NKEY_SEED',
  'NATS_NKEY_SEED_FILE',
  'NATS_CREDS',
  'NATS_TLS_CA',
  'NATS_TLS_CERT',
  'NATS_TLS_KEY',
] as const;

/** A NATS setting in the environment is missing, unreadable or malformed. */
export class NatsConfigError extends SmartSpecError {
  constructor(variable: string, message: string) {
    super('INVALID_CONFIG', `invalid environment: ${variable}: ${message}`, { details: { issues: [{ variable, message }] } });
  }
}

/** The server refused the connection's credentials (or its TLS client certificate). */
export class NatsAuthError extends SmartSpecError {
  constructor(message: string, cause?: unknown) {
    super('NATS_AUTH_FAILED', message, { cause });
  }
}

export interface NatsAuth {
  /** Options for `connect` (user/pass, token, authenticator, tls). */
  options: Pick<NodeConnectionOptions, 'user' | 'pass' | 'token' | 'authenticator' | 'tls'>;
  /** The variables that were used, named when the server refuses them. */
  variables: string[];
}

const value = (env: NodeJS.ProcessEnv, name: string) => {
  const v = env[name]?.trim();
  return v ? v : undefined;
};

function readVariableFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new NatsConfigError(name, `cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
}

/** Reads and checks the NATS credential variables; none set gives empty options (anonymous). */
export function natsAuthFromEnv(env: NodeJS.ProcessEnv = process.env): NatsAuth {
  const options: NatsAuth['options'] = {};
  const variables: string[] = [];
  const methods: string[] = [];

  const user = value(env, 'NATS_USER');
  const pass = value(env, 'NATS_PASSWORD');
  if (pass !== undefined && user === undefined) throw new NatsConfigError('NATS_USER', 'not set, but NATS_PASSWORD is: set both');
  if (user !== undefined) {
    options.user = user;
    if (pass !== undefined) options.pass = pass;
    variables.push(...(pass === undefined ? ['NATS_USER'] : ['NATS_USER', 'NATS_PASSWORD']));
    methods.push('NATS_USER');
  }

  const token = value(env, 'NATS_TOKEN');
  if (token !== undefined) {
    options.token = token;
    variables.push('NATS_TOKEN');
    methods.push('NATS_TOKEN');
  }

  const seedText = value(env, 'NATS_NKEY_SEED');
  const seedFile = value(env, 'NATS_NKEY_SEED_FILE');
  if (seedText !== undefined && seedFile !== undefined) throw new NatsConfigError('NATS_NKEY_SEED_FILE', 'set together with NATS_NKEY_SEED: set one of them');
  if (seedText !== undefined || seedFile !== undefined) {
    const name = seedText !== undefined ? 'NATS_NKEY_SEED' : 'NATS_NKEY_SEED_FILE';
    const seed = new TextEncoder().encode(seedText ?? readVariableFile(name, seedFile!).toString('utf8').trim());
    checkUserSeed(name, seed);
    options.authenticator = nkeyAuthenticator(seed);
    variables.push(name);
    methods.push(name);
  }

  const credsFile = value(env, 'NATS_CREDS');
  if (credsFile !== undefined) {
    const creds = readVariableFile('NATS_CREDS', credsFile);
    options.authenticator = checkCreds(creds);
    variables.push('NATS_CREDS');
    methods.push('NATS_CREDS');
  }

  // One identity per connection: with two, which one the server checks is not obvious.
  if (methods.length > 1) throw new NatsConfigError(methods[1], `set together with ${methods[0]}: set only one way to authenticate`);

  const ca = value(env, 'NATS_TLS_CA');
  const cert = value(env, 'NATS_TLS_CERT');
  const key = value(env, 'NATS_TLS_KEY');
  if ((cert === undefined) !== (key === undefined)) {
    throw new NatsConfigError(cert === undefined ? 'NATS_TLS_CERT' : 'NATS_TLS_KEY', `not set, but ${cert === undefined ? 'NATS_TLS_KEY' : 'NATS_TLS_CERT'} is: a client certificate needs both`);
  }
  if (ca !== undefined || cert !== undefined) {
    // Read here (not by the client, later) so a bad path names its variable.
    options.tls = {
      ...(ca !== undefined ? { ca: readVariableFile('NATS_TLS_CA', ca).toString('utf8') } : {}),
      ...(cert !== undefined ? { cert: readVariableFile('NATS_TLS_CERT', cert).toString('utf8'), key: readVariableFile('NATS_TLS_KEY', key!).toString('utf8') } : {}),
    };
    for (const [name, v] of [['NATS_TLS_CA', ca], ['NATS_TLS_CERT', cert], ['NATS_TLS_KEY', key]] as const) if (v !== undefined) variables.push(name);
  }
  return { options, variables };
}

function checkUserSeed(name: string, seed: Uint8Array): void {
  let prefix: string;
  try {
    prefix = nkeys.fromSeed(seed).getPublicKey().slice(0, 1);
  } catch {
    throw new NatsConfigError(name, 'not a valid NKEY seed (expected the SU... seed printed by `nk -gen user`)');
  }
  if (prefix !== 'U') throw new NatsConfigError(name, 'not a user NKEY seed (expected one starting with SU)');
}

function checkCreds(creds: Uint8Array): Authenticator {
  const authenticator = credsAuthenticator(creds);
  try {
    authenticator('check'); // parses the JWT and signs with the seed: a malformed file fails now
  } catch {
    throw new NatsConfigError('NATS_CREDS', 'not a NATS credentials file (expected the user JWT and NKEY seed blocks `nsc generate creds` writes)');
  }
  return authenticator;
}

/** What a failed first connection means in terms of the variables the user set. */
export function explainConnectError(err: unknown, auth: NatsAuth): unknown {
  const message = (err as Error)?.message ?? String(err);
  const used = auth.variables.filter((v) => !v.startsWith('NATS_TLS_'));
  if (err instanceof AuthorizationError || /authorization violation|authentication/i.test(message)) {
    return new NatsAuthError(
      used.length
        ? `NATS refused the credentials from ${used.join(', ')} (${message}): check them against the server's users`
        : `NATS requires credentials (${message}): set NATS_USER and NATS_PASSWORD, NATS_TOKEN, NATS_NKEY_SEED(_FILE) or NATS_CREDS`,
      err,
    );
  }
  const tls = auth.variables.filter((v) => v.startsWith('NATS_TLS_'));
  if (/tls|certificate|ssl|self.signed|handshake/i.test(message)) {
    return new NatsAuthError(
      tls.length
        ? `TLS to NATS failed with ${tls.join(', ')} (${message})`
        : `TLS to NATS failed (${message}): set NATS_TLS_CA to the CA that signed the server's certificate, and NATS_TLS_CERT and NATS_TLS_KEY if it asks for a client certificate`,
      err,
    );
  }
  // With TLS 1.3 a server that wants a client certificate just drops the connection: the client sees a timeout.
  if (auth.options.tls && !auth.options.tls.cert && /timeout/i.test(message)) {
    return new NatsAuthError(`no answer from NATS over TLS (${message}): if the server asks for a client certificate, set NATS_TLS_CERT and NATS_TLS_KEY`, err);
  }
  return err;
}

/**
 * A publish or subscription the server's permissions refuse surfaces only as
 * a timeout or a 503 somewhere else; say plainly which user lacks what.
 */
export function reportPermissionViolations(nc: NatsConnection, env: NodeJS.ProcessEnv, report: (message: string) => void): void {
  const user = value(env, 'NATS_USER');
  const who = user ? `NATS user '${user}'` : 'this NATS identity';
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' && s.error instanceof PermissionViolationError) {
        report(`NATS refused ${s.error.operation} to "${s.error.subject}" for ${who}: it lacks that permission (a role set up for another process? see nats-users.conf)`);
      }
    }
  })();
}
