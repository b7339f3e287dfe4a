// The hooks of traceImports.mjs (they run on the loader thread).
import { appendFileSync } from 'node:fs';

const file = process.env.TRACE_IMPORTS_FILE;
const record = (url) => { if (file) appendFileSync(file, `${url}\n`); };

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  record(result.url);
  return result;
}

export async function load(url, context, nextLoad) {
  record(url);
  return nextLoad(url, context);
}
