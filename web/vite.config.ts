/**
 * The explorer's build: web/ → web/dist, served by the edge under /ui/
 * (src/edge/routes/ui.ts). Run by `npm run build:web` (the package's
 * `prepare`, so `npm ci` builds it).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  resolve: {
    // Ajv compiles schemas with new Function, which the CSP refuses: see the file for what the page does instead.
    alias: [{ find: /^\.\/outputSchema\.js$/, replacement: fileURLToPath(new URL('./src/model/outputSchemaInBrowser.ts', import.meta.url)) }],
  },
  base: '/ui/',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The CSP (default-src 'self') forbids inline scripts and styles: keep every asset a file.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1000,
  },
});
