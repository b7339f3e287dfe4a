/**
 * Where `{{secrets.NAME}}` comes from, at run time, in the process running the
 * step: the environment (`SMARTSPEC_SECRET_<NAME>`) first, then the
 * `smartspec_secrets` KV bucket, whose values are sealed (sealing.ts).
 * Values are never returned by `list`, and storing refuses to run without a key.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { InvalidInputError, SmartSpecError } from '../errors.js';
import { SECRETS_BUCKET } from '../nats/names.js';
import { registerProcessSecret } from './redact.js';
import { KEY_VARIABLE, seal, SecretsKeyError, secretsKeyFromEnv, unseal } from './sealing.js';

export const ENV_PREFIX = 'SMARTSPEC_SECRET_';
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** What a runner needs: a value by name. */
export interface SecretResolver {
  get(name: string): Promise<string>;
}

export class SecretNotFoundError extends SmartSpecError {
  constructor(name: string) {
    super('SECRET_NOT_FOUND', `secret '${name}' is not set: smartspec secrets set ${name} (or ${ENV_PREFIX}${name} in the worker's environment)`, { details: { secret: name } });
  }
}

export function checkSecretName(name: string): void {
  if (!SECRET_NAME.test(name)) throw new InvalidInputError(`'${name}' is not a secret name (letters, digits and _, not starting with a digit, at most 128)`);
}

export class SecretStore implements SecretResolver {
  private constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly key: Buffer | undefined,
    private readonly kv: KV | undefined,
  ) {}

  /** Environment only (no NATS): tests and embedded engines. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): SecretStore {
    return new SecretStore(env, undefined, undefined);
  }

  static async open(nc: NatsConnection, env: NodeJS.ProcessEnv = process.env, replicas = 1): Promise<SecretStore> {
    const key = secretsKeyFromEnv(env);
    const kv = await new Kvm(nc).create(SECRETS_BUCKET, { history: 1, storage: StorageType.File, replicas });
    // The environment's secrets are this process's own: redacted wherever they turn up, used or not.
    for (const [k, v] of Object.entries(env)) if (k.startsWith(ENV_PREFIX) && v) registerProcessSecret(k.slice(ENV_PREFIX.length), v);
    return new SecretStore(env, key, kv);
  }

  async get(name: string): Promise<string> {
    const fromEnv = this.env[ENV_PREFIX + name];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    const entry = this.kv && SECRET_NAME.test(name) ? await this.kv.get(name) : null;
    if (!entry || entry.operation !== 'PUT') throw new SecretNotFoundError(name);
    if (!this.key) throw new SecretsKeyError(`secret '${name}' is stored sealed: this process needs ${KEY_VARIABLE} to read it`);
    return unseal(this.key, name, entry.string());
  }

  async set(name: string, value: string): Promise<void> {
    checkSecretName(name);
    if (!this.key) throw new SecretsKeyError(`${KEY_VARIABLE} is not set: secrets are stored encrypted, and never without a key (e.g. export ${KEY_VARIABLE}=$(openssl rand -hex 32))`);
    if (!value) throw new InvalidInputError(`secret '${name}': the value is empty`);
    await this.requireKv().put(name, seal(this.key, name, value));
  }

  /** Names in the bucket (never values), sorted. */
  async list(): Promise<string[]> {
    const names: string[] = [];
    for await (const k of await this.requireKv().keys()) names.push(k);
    return names.sort();
  }

  /** Returns whether the secret existed. */
  async remove(name: string): Promise<boolean> {
    checkSecretName(name);
    const kv = this.requireKv();
    const entry = await kv.get(name);
    if (!entry || entry.operation !== 'PUT') return false;
    await kv.purge(name); // purge, not delete: the sealed value leaves the bucket's history
    return true;
  }

  private requireKv(): KV {
    if (!this.kv) throw new InvalidInputError('this secret store reads the environment only');
    return this.kv;
  }
}
