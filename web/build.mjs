/**
 * Builds the explorer (web/ → web/dist): `npm run build:web`, and the
 * package's `prepare`, so `npm ci` builds it. An install without dev
 * dependencies (--omit=dev) has no Vite: it says so and goes on, and the edge
 * answers /ui/ with a 404 that says how to build it.
 */
import { fileURLToPath } from 'node:url';

let vite;
try {
  vite = await import('vite');
} catch {
  console.warn('smartspec: the explorer (/ui/) is not built: Vite is a dev dependency (npm ci without --omit=dev builds it)');
  process.exit(0);
}
await vite.build({ configFile: fileURLToPath(new URL('./vite.config.ts', import.meta.url)), logLevel: 'warn' });
