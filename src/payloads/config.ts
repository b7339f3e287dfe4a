/**
 * Limits on the values an execution carries (input, step outputs, signal
 * payloads), read from the environment. A bad value stops the process at
 * start with the variable's name.
 */
import { SmartSpecError } from '../errors.js';

export interface PayloadLimits {
  /** Values whose JSON is larger than this are stored in the object store; the record carries a ref. */
  inlineMaxBytes: number;
  /** The largest value an execution may carry (its JSON); larger step outputs fail with OUTPUT_TOO_LARGE. */
  maxBytes: number;
  /** The deepest nesting of arrays and objects a value may have. */
  maxNesting: number;
}

export const DEFAULT_PAYLOAD_LIMITS: PayloadLimits = { inlineMaxBytes: 64 * 1024, maxBytes: 64 * 1024 * 1024, maxNesting: 100 };

const VARIABLES = {
  inlineMaxBytes: 'SMARTSPEC_INLINE_MAX_BYTES',
  maxBytes: 'SMARTSPEC_PAYLOAD_MAX_BYTES',
  maxNesting: 'SMARTSPEC_MAX_NESTING',
} as const;

export class PayloadConfigError extends SmartSpecError {
  constructor(variable: string, message: string) {
    super('INVALID_CONFIG', `invalid environment: ${variable}: ${message}`, { details: { issues: [{ variable, message }] } });
  }
}

export function payloadLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): PayloadLimits {
  const limits = { ...DEFAULT_PAYLOAD_LIMITS };
  for (const key of Object.keys(VARIABLES) as (keyof PayloadLimits)[]) {
    const raw = env[VARIABLES[key]];
    if (raw === undefined || raw === '') continue;
    if (!/^\d+$/.test(raw) || Number(raw) < 1 || !Number.isSafeInteger(Number(raw))) throw new PayloadConfigError(VARIABLES[key], `expected a positive integer, got '${raw}'`);
    limits[key] = Number(raw);
  }
  // Refs make a record a few hundred bytes; a threshold above the limit would never store by reference.
  if (limits.inlineMaxBytes > limits.maxBytes) throw new PayloadConfigError(VARIABLES.inlineMaxBytes, `must not exceed ${VARIABLES.maxBytes} (${limits.maxBytes})`);
  return limits;
}
