/**
 * Secrets at rest: AES-256-GCM (node:crypto), a fresh 96-bit IV per value,
 * the secret's name as additional data (a sealed value copied under another
 * name does not open). The key is SMARTSPEC_SECRETS_KEY: 32 bytes, as 64 hex
 * digits or base64.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SmartSpecError } from '../errors.js';

export const KEY_VARIABLE = 'SMARTSPEC_SECRETS_KEY';

export class SecretsKeyError extends SmartSpecError {
  constructor(message: string) {
    super('SECRETS_KEY_INVALID', message, { details: { variable: KEY_VARIABLE } });
  }
}

/** The key from the environment; undefined when unset. Throws when set but not 32 bytes. */
export function secretsKeyFromEnv(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  const raw = env[KEY_VARIABLE]?.trim();
  if (!raw) return undefined;
  const key = /^[0-9a-f]{64}$/i.test(raw) ? Buffer.from(raw, 'hex') : Buffer.from(raw, 'base64');
  if (key.length !== 32) throw new SecretsKeyError(`${KEY_VARIABLE} must be 32 bytes, as 64 hex digits or base64 (e.g. openssl rand -hex 32)`);
  return key;
}

interface Sealed { v: 1; iv: string; tag: string; data: string }

export function seal(key: Buffer, name: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(name));
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const sealed: Sealed = { v: 1, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
  return JSON.stringify(sealed);
}

export function unseal(key: Buffer, name: string, stored: string): string {
  try {
    const sealed = JSON.parse(stored) as Sealed;
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    decipher.setAAD(Buffer.from(name));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretsKeyError(`secret '${name}' does not decrypt with ${KEY_VARIABLE} (another key, or a damaged value)`);
  }
}
