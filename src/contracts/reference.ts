/**
 * The API reference page's files (reference/): a static page that renders
 * /openapi.json in the browser, served by the edge so nothing comes from a
 * CDN. The build copies the folder next to the compiled module.
 */
import { readFile } from 'node:fs/promises';

const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'reference.js': 'text/javascript; charset=utf-8',
  'reference.css': 'text/css; charset=utf-8',
};

export interface ReferenceFile {
  type: string;
  body: Buffer;
}

const loaded = new Map<string, Promise<ReferenceFile>>();

/** One of the page's files, or undefined for any other name. */
export function referenceFile(name: string): Promise<ReferenceFile> | undefined {
  const type = FILES[name];
  if (!type) return undefined;
  let file = loaded.get(name);
  if (!file) {
    file = readFile(new URL(`./reference/${name}`, import.meta.url)).then((body) => ({ type, body }));
    loaded.set(name, file);
  }
  return file;
}
