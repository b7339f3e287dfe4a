/**
 * zod compiles object validators with `new Function` unless told not to; the
 * CSP (default-src 'self') refuses that and reports a violation. Schemas read
 * the setting when they are made, so this module is imported before any.
 */
import { config } from 'zod';

config({ jitless: true });
