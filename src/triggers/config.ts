/**
 * Where user events live: a JetStream stream over the user's subjects. With
 * SMARTSPEC_EVENTS_STREAM naming an existing stream, that stream is used as it
 * is; otherwise it is created over SMARTSPEC_EVENTS_SUBJECTS (file storage,
 * kept SMARTSPEC_EVENTS_MAX_AGE, duplicates by message id dropped for 2 minutes).
 */
import { z } from 'zod';
import { ConfigError } from '../edge/config.js';
import { parseDuration } from '../limits.js';

export interface EventsConfig {
  stream: string;
  subjects: string[];
  maxAgeMs: number;
}

const env = z.object({
  SMARTSPEC_EVENTS_STREAM: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a stream name: letters, digits, _ or -').default('SMARTSPEC_EVENTS'),
  SMARTSPEC_EVENTS_SUBJECTS: z.string().default('events.>'),
  SMARTSPEC_EVENTS_MAX_AGE: z.string().default('7d'),
});

export function loadEventsConfig(source: NodeJS.ProcessEnv = process.env): EventsConfig {
  const parsed = env.safeParse(Object.fromEntries(Object.entries(source).filter(([, v]) => v !== '')));
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => ({ variable: String(i.path[0]), message: i.message })));
  const subjects = parsed.data.SMARTSPEC_EVENTS_SUBJECTS.split(',').map((s) => s.trim()).filter(Boolean);
  const issues = subjects.filter((s) => /^(smartspec|\$)/i.test(s)).map((s) => ({ variable: 'SMARTSPEC_EVENTS_SUBJECTS', message: `'${s}' is reserved for the system's own subjects` }));
  const maxAgeMs = parseDuration(parsed.data.SMARTSPEC_EVENTS_MAX_AGE);
  if (maxAgeMs === undefined) issues.push({ variable: 'SMARTSPEC_EVENTS_MAX_AGE', message: `'${parsed.data.SMARTSPEC_EVENTS_MAX_AGE}' is not a duration such as 7d or 12h` });
  if (subjects.length === 0) issues.push({ variable: 'SMARTSPEC_EVENTS_SUBJECTS', message: 'needs at least one subject' });
  if (issues.length) throw new ConfigError(issues);
  return { stream: parsed.data.SMARTSPEC_EVENTS_STREAM, subjects, maxAgeMs: maxAgeMs! };
}
