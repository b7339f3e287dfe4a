/** Sealing, redaction and `{{secrets.NAME}}` validation and resolution (pure, no NATS). */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { validateDefinition } from '../../../src/definition/validate.js';
import { ExecutionSecrets } from '../../../src/secrets/executionSecrets.js';
import { redactDeep, redactErrorText, redactKnown } from '../../../src/secrets/redact.js';
import { seal, secretsKeyFromEnv, unseal } from '../../../src/secrets/sealing.js';
import { SecretStore } from '../../../src/secrets/secretStore.js';

describe('sealing', () => {
  const key = randomBytes(32);

  it('round-trips, and the stored text holds no plaintext', () => {
    const stored = seal(key, 'TOKEN', 'hunter2-very-secret');
    expect(stored).not.toContain('hunter2');
    expect(unseal(key, 'TOKEN', stored)).toBe('hunter2-very-secret');
  });

  it('does not open with another key or under another name', () => {
    const stored = seal(key, 'TOKEN', 'v');
    expect(() => unseal(randomBytes(32), 'TOKEN', stored)).toThrow(/does not decrypt/);
    expect(() => unseal(key, 'OTHER', stored)).toThrow(/does not decrypt/);
  });

  it('reads the key as hex or base64, and refuses another length naming the variable', () => {
    expect(secretsKeyFromEnv({ SMARTSPEC_SECRETS_KEY: key.toString('hex') })).toEqual(key);
    expect(secretsKeyFromEnv({ SMARTSPEC_SECRETS_KEY: key.toString('base64') })).toEqual(key);
    expect(secretsKeyFromEnv({})).toBeUndefined();
    expect(() => secretsKeyFromEnv({ SMARTSPEC_SECRETS_KEY: 'short' })).toThrow(/SMARTSPEC_SECRETS_KEY must be 32 bytes/);
  });
});

describe('redaction', () => {
  const known = new Map([['s3cr3t-value', 'TOKEN'], ['s3cr3t-value-longer', 'LONG']]);

  it('replaces known values by name, longest first, deep inside outputs', () => {
    expect(redactKnown('a s3cr3t-value-longer b s3cr3t-value', known)).toBe('a [REDACTED:LONG] b [REDACTED:TOKEN]');
    expect(redactDeep({ list: ['x s3cr3t-value'], n: 1 }, (s) => redactKnown(s, known))).toEqual({ list: ['x [REDACTED:TOKEN]'], n: 1 });
  });

  it('removes credential shapes from error texts', () => {
    const text = 'denied: Authorization: Bearer abc.def-123456, key sk-proj-ABCDEFGHIJ, "api_key": "zzzz9999", x-api-key=qqqq1111 at https://ana:pw-77777@host/x';
    const out = redactErrorText(text);
    for (const leaked of ['abc.def-123456', 'sk-proj-ABCDEFGHIJ', 'zzzz9999', 'qqqq1111', 'pw-77777']) expect(out).not.toContain(leaked);
    expect(out).toContain('Bearer [REDACTED]');
  });
});

describe('{{secrets.NAME}}', () => {
  const wf = (step: object) => ({ id: 'w', steps: [{ id: 'a', type: 'transform', value: 1 }, step] });

  it('is accepted where a step sends something out', () => {
    expect(() => validateDefinition(wf({ id: 'b', type: 'llm', prompt: 'use {{secrets.KEY_1}}' }))).not.toThrow();
    expect(() => validateDefinition(wf({ id: 'b', type: 'http', request: { url: 'https://x/{{secrets.P}}', body: { k: '{{secrets.P}}' } } }))).not.toThrow();
  });

  it('is refused with a path that is not one name, or in when / model', () => {
    expect(() => validateDefinition(wf({ id: 'b', type: 'transform', value: '{{secrets.a.b}}' }))).toThrow(/steps\[1\]\.value: \{\{secrets\.a\.b\}\}: write \{\{secrets\.NAME\}\}/);
    expect(() => validateDefinition(wf({ id: 'b', type: 'transform', value: 1, when: '{{secrets.A}}' }))).toThrow(/may not stand in 'when'/);
    expect(() => validateDefinition(wf({ id: 'b', type: 'llm', prompt: 'x', model: '{{secrets.A}}' }))).toThrow(/may not stand in 'model'/);
  });

  it('resolves from SMARTSPEC_SECRET_<NAME>, says which secret is missing, and redacts what follows', async () => {
    const secrets = new ExecutionSecrets(SecretStore.fromEnv({ SMARTSPEC_SECRET_TOKEN: 'tok-123456' }));
    const step = validateDefinition(wf({ id: 'b', type: 'transform', value: 'x {{secrets.TOKEN}}' })).steps[1];
    expect(await secrets.forStep(step)).toEqual({ TOKEN: 'tok-123456' });
    expect(secrets.redactOutput({ echoed: 'tok-123456' })).toEqual({ echoed: '[REDACTED:TOKEN]' });
    expect(secrets.redactError({ code: 'HTTP_401', message: 'bad tok-123456', retryable: false, details: { body: 'tok-123456' } }))
      .toEqual({ code: 'HTTP_401', message: 'bad [REDACTED:TOKEN]', retryable: false, details: { body: '[REDACTED:TOKEN]' } });
    const missing = validateDefinition(wf({ id: 'b', type: 'transform', value: '{{secrets.NOPE}}' })).steps[1];
    await expect(secrets.forStep(missing)).rejects.toMatchObject({ code: 'SECRET_NOT_FOUND', message: expect.stringMatching(/secret 'NOPE' is not set/) });
  });
});
