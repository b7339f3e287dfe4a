/**
 * The secrets of one execution, in the process running it: fetched when a
 * step that names them runs (never at submission, never stored), and
 * remembered so that everything the runner records from then on (outputs,
 * errors) has their values replaced by `[REDACTED:NAME]`.
 */
import type { Step } from '../../machines/definition.js';
import type { ErrorInfo } from '../../machines/index.js';
import { collectTemplates } from '../definition/templates.js';
import { knownRedactor, redactDeep, redactErrorText } from './redact.js';
import type { SecretResolver } from './secretStore.js';

export class ExecutionSecrets {
  /** value → name, for every secret a step of this execution used in this process. */
  private readonly used = new Map<string, string>();

  constructor(private readonly resolver: SecretResolver) {}

  /** The values of the secrets the step's templates name; undefined when it names none. */
  async forStep(step: Step): Promise<Record<string, string> | undefined> {
    const names = secretNames(step);
    if (names.length === 0) return undefined;
    const values: Record<string, string> = {};
    for (const name of names) {
      const value = await this.resolver.get(name);
      this.used.set(value, name);
      values[name] = value;
    }
    return values;
  }

  redactOutput<T>(output: T): T {
    const redact = knownRedactor(this.used);
    return redact ? redactDeep(output, redact) : output;
  }

  /** Error texts are upstream texts: known values and anything shaped like a credential go. */
  redactError(error: ErrorInfo): ErrorInfo {
    const redact = (s: string) => redactErrorText(s, this.used);
    return { ...error, message: redact(error.message), ...(error.details ? { details: redactDeep(error.details, redact) } : {}) };
  }
}

/** By step object: a definition's steps are the same objects for every run of them. */
const namesOf = new WeakMap<Step, string[]>();

function secretNames(step: Step): string[] {
  let names = namesOf.get(step);
  if (!names) namesOf.set(step, (names = collectSecretNames(step)));
  return names;
}

function collectSecretNames(step: Step): string[] {
  // An llm step's schema is sent as written: braces in its descriptions are not templates.
  const { when: _when, schema: _sentAsWritten, ...fields } = step as Step & { schema?: unknown };
  let refs: ReturnType<typeof collectTemplates>;
  try {
    refs = collectTemplates(fields);
  } catch {
    return []; // a malformed template fails the step when it is resolved
  }
  return [...new Set(refs.filter((r) => r.path[0] === 'secrets' && r.path.length === 2).map((r) => r.path[1]))];
}
